package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/daprshop/daprshop/internal/runner"
)

// path is one way to reach the seed's GET /service.
type path struct {
	Name string `json:"name"`
	What string `json:"what"`
	URL  string `json:"url"`
	// instance is the X-Instance-Id the answers should carry, when the path can
	// reach another system's hello through Dapr's machine-wide mDNS.
	instance string
}

// Names of the paths, as the report shows them.
const (
	pathDirect   = "direct"
	pathOne      = "1 sidecar"
	pathTwo      = "2 sidecars"
	pathGateway  = "gateway + 2 sidecars"
	pathTornado  = "seed: Tornado"
	tornadoPort  = 8888
	tornadoReady = 10 * time.Second
)

// helloPaths are the ways to hello, as Dapr's own performance tests compare
// them: the app directly; through its own sidecar (which invokes its own app
// locally); from another sidecar (the gateway's) to hello's sidecar to hello,
// which is the two-sidecar path Dapr publishes figures for; and the same
// through the gateway app, which is what a client of daprshop uses.
func helloPaths(sys *runner.System) []path {
	hello, gw := sys.App("hello"), sys.App("gateway")
	return []path{
		{Name: pathDirect, What: "hello's app port", URL: hello.AppURL() + "/service"},
		{Name: pathOne, What: "hello's own daprd: /v1.0/invoke/hello/method/service", URL: hello.DaprURL() + "/v1.0/invoke/hello/method/service"},
		{Name: pathTwo, What: "the gateway's daprd, then hello's daprd", URL: gw.DaprURL() + "/v1.0/invoke/hello/method/service", instance: hello.ID},
		{Name: pathGateway, What: "the gateway app, its daprd, hello's daprd", URL: gw.AppURL() + "/api/hello/service", instance: hello.ID},
	}
}

// pathResult is what one path did at the fixed rate and how high it went.
type pathResult struct {
	path
	// Fixed has one measurement per round at the fixed rate; FixedMedian the
	// median of each percentile over the rounds.
	Fixed       []latencies `json:"fixedRounds"`
	FixedMedian latencies   `json:"fixedMs"`
	// Added is FixedMedian less the direct path's, percentile by percentile.
	Added   *latencies  `json:"addedMs,omitempty"`
	Probes  []rateProbe `json:"maxProbes"`
	MaxHeld int         `json:"maxHeldRate"`
	// MaxThroughput is the successful answers per second at MaxHeld.
	MaxThroughput float64 `json:"maxThroughput"`
	Foreign       int     `json:"answeredByAnotherSystem"`
	// CPU is what each process spent on this path at the fixed rate, over every
	// round, in CPU milliseconds per 1000 requests.
	CPU      map[string]float64 `json:"cpuMsPer1000Requests"`
	requests int
}

// rateProbe is one rate tried in the search for the highest rate held.
type rateProbe struct {
	Rate       int       `json:"rate"`
	Throughput float64   `json:"throughput"`
	Success    float64   `json:"success"`
	Latency    latencies `json:"latencyMs"`
	Held       bool      `json:"held"`
}

type overheadResult struct {
	FixedRate int          `json:"fixedRate"`
	Paths     []pathResult `json:"paths"`
	Tornado   string       `json:"tornado"`
}

// runOverhead measures every path at the fixed rate, in rounds with the paths
// interleaved so that a burst of someone else's load falls on all of them
// alike, then searches for the highest rate each path holds.
func runOverhead(ctx context.Context, cfg config, sys *runner.System, logf func(string, ...any)) (*overheadResult, error) {
	res := &overheadResult{FixedRate: cfg.fixedRate}
	var paths []path
	if cfg.only["overhead"] {
		paths = helloPaths(sys)
	}
	tornadoPID := 0
	if cfg.only["tornado"] {
		stop, pid, why := startTornado(ctx, cfg, logf)
		tornadoPID = pid
		res.Tornado = why
		if stop != nil {
			defer stop()
			paths = append(paths, path{Name: pathTornado, What: "the seed's tornado_service.py, Debian's python3-tornado", URL: fmt.Sprintf("http://127.0.0.1:%d/service", tornadoPort)})
		} else {
			logf("Tornado skipped: %s", why)
		}
	}
	results := make([]pathResult, len(paths))
	procs := processes(sys)
	if tornadoPID > 0 {
		procs = append(procs, proc{name: "tornado", pid: tornadoPID})
	}
	clients := make([]*http.Client, len(paths))
	for i, p := range paths {
		results[i].path = p
		clients[i] = loadClient(5 * time.Second)
	}
	for r := 0; r < cfg.rounds; r++ {
		for i, p := range paths {
			meter := startCost(procs)
			lat, _, _, foreign := hit(ctx, clients[i], p, cfg.fixedRate, cfg.fixedDuration)
			c := meter.stop(p.Name, lat.N)
			if results[i].CPU == nil {
				results[i].CPU = map[string]float64{}
			}
			for _, pc := range c.Processes {
				results[i].CPU[pc.Name] += pc.CPUSeconds * 1000
			}
			results[i].requests += lat.N
			results[i].Fixed = append(results[i].Fixed, lat)
			results[i].Foreign += foreign
			logf("hello %-22s %d/s round %d: p50 %.3f ms, p90 %.3f ms, p99 %.3f ms", p.Name, cfg.fixedRate, r+1, lat.P50, lat.P90, lat.P99)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	for i := range results {
		results[i].FixedMedian = medianOf(results[i].Fixed)
		for name, cpu := range results[i].CPU {
			if results[i].requests > 0 {
				results[i].CPU[name] = cpu / float64(results[i].requests) * 1000
			}
		}
	}
	for i := range results {
		if results[i].Name == pathDirect {
			continue
		}
		if d := find(results, pathDirect); d != nil {
			a := results[i].FixedMedian.minus(d.FixedMedian)
			results[i].Added = &a
		}
	}
	for i, p := range paths {
		results[i].Probes, results[i].MaxHeld, results[i].MaxThroughput = searchMax(ctx, cfg, clients[i], p, logf)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	res.Paths = results
	return res, nil
}

func find(rs []pathResult, name string) *pathResult {
	for i := range rs {
		if rs[i].Name == name {
			return &rs[i]
		}
	}
	return nil
}

// loadClient is the HTTP client of one kind of load, kept across its attacks
// (a vegeta attacker serves one attack) so that connections stay warm.
func loadClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        10000,
		MaxIdleConnsPerHost: 10000,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// hit sends GET requests to p at rate for d and returns the latencies of the
// successful answers, the successful answers per second, the share of
// successes, and how many answers came from another system's instance.
func hit(ctx context.Context, c *http.Client, p path, rate int, d time.Duration) (lat latencies, throughput, success float64, foreign int) {
	a := vegeta.NewAttacker(vegeta.Client(c), vegeta.MaxBody(64))
	target := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: p.URL})
	var ok []time.Duration
	n := 0
	var first, last time.Time
	for res := range a.Attack(target, vegeta.Rate{Freq: rate, Per: time.Second}, d, p.Name) {
		n++
		if first.IsZero() || res.Timestamp.Before(first) {
			first = res.Timestamp
		}
		if res.End().After(last) {
			last = res.End()
		}
		if res.Code == http.StatusOK && res.Error == "" {
			ok = append(ok, res.Latency)
		}
		if p.instance != "" && res.Headers != nil && res.Headers.Get("X-Instance-Id") != p.instance {
			foreign++
		}
		if ctx.Err() != nil {
			a.Stop()
		}
	}
	if n > 0 {
		success = float64(len(ok)) / float64(n)
		throughput = float64(len(ok)) / last.Sub(first).Seconds()
	}
	return summarize(ok), throughput, success, foreign
}

// searchMax finds the highest rate p holds: every request answered, at the
// rate asked (97%), p99 under the SLO. It doubles from the start rate until a
// rate is not held, then bisects until the two are within 10% of each other.
func searchMax(ctx context.Context, cfg config, c *http.Client, p path, logf func(string, ...any)) ([]rateProbe, int, float64) {
	var probes []rateProbe
	heldRate, heldTP, notHeld := 0, 0.0, 0
	pause := 2 * time.Second
	try := func(rate int) bool {
		// A pause between probes lets the previous backlog clear; after a rate
		// that was not held, a longer one, and new connections, so that a
		// collapse does not weigh on the next, lower rate.
		time.Sleep(pause)
		lat, tp, success, _ := hit(ctx, c, p, rate, cfg.maxDuration)
		pr := rateProbe{Rate: rate, Throughput: tp, Success: success, Latency: lat,
			Held: success >= 0.9999 && tp >= 0.97*float64(rate) && lat.P99 < ms(cfg.slo)}
		probes = append(probes, pr)
		logf("hello %-22s %5d/s: %.0f/s answered, %.2f%% ok, p99 %.2f ms; held %v", p.Name, rate, tp, 100*success, lat.P99, pr.Held)
		if pr.Held {
			heldRate, heldTP = rate, tp
			pause = 2 * time.Second
		} else {
			notHeld = rate
			pause = 15 * time.Second
			c.CloseIdleConnections()
		}
		return pr.Held
	}
	for rate := cfg.maxStart; rate <= cfg.maxLimit && ctx.Err() == nil; rate *= 2 {
		if !try(rate) {
			break
		}
	}
	for heldRate > 0 && notHeld > 0 && float64(notHeld)/float64(heldRate) > 1.1 && ctx.Err() == nil {
		try((heldRate + notHeld) / 2 / 50 * 50)
	}
	return probes, heldRate, heldTP
}

// medianOf takes each percentile's median over the rounds.
func medianOf(ls []latencies) latencies {
	pick := func(f func(latencies) float64) float64 {
		v := make([]float64, len(ls))
		for i, l := range ls {
			v[i] = f(l)
		}
		sort.Float64s(v)
		if len(v) == 0 {
			return 0
		}
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	out := latencies{
		P50:  pick(func(l latencies) float64 { return l.P50 }),
		P90:  pick(func(l latencies) float64 { return l.P90 }),
		P99:  pick(func(l latencies) float64 { return l.P99 }),
		P999: pick(func(l latencies) float64 { return l.P999 }),
		Max:  pick(func(l latencies) float64 { return l.Max }),
	}
	for _, l := range ls {
		out.N += l.N
	}
	return out
}

func (l latencies) minus(o latencies) latencies {
	return latencies{N: l.N, P50: l.P50 - o.P50, P90: l.P90 - o.P90, P99: l.P99 - o.P99, P999: l.P999 - o.P999, Max: l.Max - o.Max}
}

// startTornado runs the seed's service, verbatim, with Debian's Python and
// Tornado, from a scratch folder. It returns how to stop it, or nil and why it
// cannot run.
func startTornado(ctx context.Context, cfg config, logf func(string, ...any)) (stop func(), pid int, why string) {
	if _, err := os.Stat(cfg.seed); err != nil {
		return nil, 0, fmt.Sprintf("the seed's service is not at %s", cfg.seed)
	}
	if err := exec.Command(cfg.python, "-c", "import tornado").Run(); err != nil {
		return nil, 0, fmt.Sprintf("Tornado is not installed for %s (apt-get install -y python3-tornado)", cfg.python)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tornadoPort), time.Second); err == nil {
		c.Close()
		return nil, 0, fmt.Sprintf("port %d, which the seed hard-codes, is taken (a `make run` puts hello there)", tornadoPort)
	}
	dir, err := os.MkdirTemp("", "bench-tornado-")
	if err != nil {
		return nil, 0, err.Error()
	}
	cmd := exec.CommandContext(ctx, cfg.python, cfg.seed)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, 0, err.Error()
	}
	stop = func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	deadline := time.Now().Add(tornadoReady)
	for time.Now().Before(deadline) {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/service", tornadoPort))
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				v, _ := exec.Command(cfg.python, "-c", "import tornado,sys; print('Tornado', tornado.version, 'on Python', sys.version.split()[0])").Output()
				logf("Tornado up: %s", strings.TrimSpace(string(v)))
				return stop, cmd.Process.Pid, strings.TrimSpace(string(v))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return nil, 0, errors.New("the seed's service did not answer: " + out.String()).Error()
}
