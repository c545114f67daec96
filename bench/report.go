package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// report is everything one run measured.
type report struct {
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Host     host              `json:"host"`
	Command  string            `json:"command"`
	Settings map[string]string `json:"settings"`
	// SidecarEnv is what of the runner's SidecarEnv every daprd of the run got.
	SidecarEnv []string `json:"sidecarEnv"`
	// Others are daprd processes of other systems that ran on the machine at
	// the start: their load shares the cores.
	Others   []string        `json:"otherSystems,omitempty"`
	Targets  []target        `json:"targets"`
	Orders   *ordersResult   `json:"orders,omitempty"`
	Overhead *overheadResult `json:"overhead,omitempty"`
}

type host struct {
	CPU       string  `json:"cpu"`
	CPUs      int     `json:"cpus"`
	MemoryGiB float64 `json:"memoryGiB"`
	Go        string  `json:"go"`
	Redis     string  `json:"redis"`
	Daprd     string  `json:"daprd"`
}

// target is one of issue 6's goals and whether the run met it.
type target struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// Dapr's published service invocation overhead through two sidecars at 1000
// requests per second (docs.dapr.io, "Service invocation performance").
var daprPublished = latencies{P50: 1.06, P90: 1.48, P99: 2.90}

func settingsOf(c config) map[string]string {
	return map[string]string{
		"orderRates":      fmt.Sprint(c.orderRates),
		"orderDuration":   c.orderDuration.String(),
		"searchSteps":     fmt.Sprint(c.searchSteps),
		"searchDuration":  c.searchDuration.String(),
		"sustainRate":     fmt.Sprint(c.sustainRate),
		"sustainDuration": c.sustainDuration.String(),
		"profile":         c.profile.String(),
		"drainTimeout":    c.drainTimeout.String(),
		"slo":             c.slo.String(),
		"isolated":        fmt.Sprint(c.isolate),
		"products":        fmt.Sprint(c.products),
		"customers":       fmt.Sprint(c.customers),
		"fixedRate":       fmt.Sprint(c.fixedRate),
		"fixedDuration":   c.fixedDuration.String(),
		"rounds":          fmt.Sprint(c.rounds),
		"maxStart":        fmt.Sprint(c.maxStart),
		"maxDuration":     c.maxDuration.String(),
	}
}

func (r *report) slo() time.Duration {
	d, err := time.ParseDuration(r.Settings["slo"])
	if err != nil {
		return 100 * time.Millisecond
	}
	return d
}

// targetsOf judges the run against the goals of issue 6.
func targetsOf(r *report) []target {
	var out []target
	if r.Overhead != nil {
		gw, tor := find(r.Overhead.Paths, pathGateway), find(r.Overhead.Paths, pathTornado)
		if gw != nil && tor != nil {
			out = append(out, target{
				Goal:     "hello through the gateway and two sidecars holds at least the seed's bare Tornado throughput",
				Measured: fmt.Sprintf("gateway %d/s held (%.0f/s answered) vs Tornado %d/s held (%.0f/s)", gw.MaxHeld, gw.MaxThroughput, tor.MaxHeld, tor.MaxThroughput),
				Met:      gw.MaxHeld >= tor.MaxHeld,
			})
		}
		// The issue measures the added latency through the gateway; Dapr's own
		// test calls the first sidecar directly, without an app in front of it.
		for _, p := range []struct{ name, through string }{
			{pathGateway, "through the gateway and two sidecars"},
			{pathTwo, "of the two sidecars alone (the gateway's daprd called directly, as Dapr's test calls its sidecar)"},
		} {
			if t, ok := addedLatencyTarget(find(r.Overhead.Paths, p.name), p.through, r.Overhead.FixedRate); ok {
				out = append(out, t)
			}
		}
	}
	if r.Orders != nil && r.Orders.Sustained != nil {
		s := r.Orders.Sustained
		out = append(out, target{
			Goal: fmt.Sprintf("at least 250 confirmed orders/s sustained for 60 s, 0 lost, p99 placement under %s", r.slo()),
			Measured: fmt.Sprintf("%.0f confirmed/s over %.0f s at %d/s offered, %d refused at capacity, %d unsettled, %d lost in the run, p99 placement %.1f ms",
				s.ConfirmedPerSec, s.Seconds, s.Rate, s.Refused, s.Unsettled, r.Orders.Lost, s.Placement.P99),
			Met: s.ConfirmedPerSec >= 250 && s.Seconds >= 59 && s.Unsettled == 0 && r.Orders.Lost == 0 &&
				s.Failed == 0 && s.Refused == 0 && s.Placement.P99 < ms(r.slo()),
		})
	}
	return out
}

// addedLatencyTarget judges a path's added latency at the fixed rate against
// Dapr's published figures; false when the path was not measured.
func addedLatencyTarget(p *pathResult, through string, rate int) (target, bool) {
	if p == nil || p.Added == nil {
		return target{}, false
	}
	a := p.Added
	return target{
		Goal: fmt.Sprintf("added latency %s at %d/s within Dapr's +%.2f / +%.2f / +%.2f ms (p50/p90/p99)",
			through, rate, daprPublished.P50, daprPublished.P90, daprPublished.P99),
		Measured: fmt.Sprintf("+%.2f / +%.2f / +%.2f ms", a.P50, a.P90, a.P99),
		Met:      a.P50 <= daprPublished.P50 && a.P90 <= daprPublished.P90 && a.P99 <= daprPublished.P99,
	}, true
}

// write saves the latest summary (Markdown, JSON, SVG) and a copy of each in the
// run's raw folder.
func (r *report) write(dir, rawDir string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"latest.json": append(js, '\n'),
		"latest.md":   []byte(r.markdown()),
		"latency.svg": []byte(latencyChart(r)),
	}
	for name, b := range files {
		for _, d := range []string{dir, rawDir} {
			if err := os.WriteFile(filepath.Join(d, name), b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// summary is the few lines the bench prints at the end.
func (r *report) summary() string {
	var b strings.Builder
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "%-4s %s\n     %s\n", map[bool]string{true: "MET", false: "MISS"}[t.Met], t.Goal, t.Measured)
	}
	return b.String()
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# daprshop benchmark\n\n")
	w("Run %s to %s on %d × %s, %.0f GiB, %s, daprd %s, %s. Produced by `%s`; `make bench` runs it with the defaults.\n\n",
		r.Started.Format("2006-01-02 15:04:05 MST"), r.Finished.Format("15:04:05"), r.Host.CPUs, r.Host.CPU, r.Host.MemoryGiB, r.Host.Go, r.Host.Daprd, r.Host.Redis, r.Command)
	w("The system is started from `dapr.yaml` by `internal/runner`, as `make run` starts it (free ports), with the default component set (Redis): ")
	w("every daprd with `%s`, every app with dapr.yaml's `env`. ", strings.Join(r.SidecarEnv, " "))
	w("The load generator (vegeta, open loop) runs on the same two cores as the system, and other engineers' suites may run beside it: compare numbers within one run only. ")
	w("What each tuning change bought, measured before and after in one run, is in `bench/README.md` (\"Tuning log\").\n\n")
	if len(r.Others) > 0 {
		w("Other daprd processes on the machine when the run started: %s.\n\n", strings.Join(r.Others, ", "))
	}
	w("![latency against rate](latency.svg)\n\n")

	w("## Targets\n\n| goal | measured | met |\n|---|---|---|\n")
	for _, t := range r.Targets {
		w("| %s | %s | %s |\n", t.Goal, t.Measured, yes(t.Met))
	}
	w("\n")

	if o := r.Orders; o != nil {
		w("## Orders through the gateway\n\n")
		w("Each step offers `POST /api/orders` at a fixed rate (one or two of %d products, to one of %d customers new to this run, a fresh `Idempotency-Key` each), ", o.Setup.Products, o.Setup.Customers)
		w("then waits until every accepted order is confirmed or cancelled (reading it from orders). Time to confirmed is from the order's own history: pending to confirmed. ")
		w("Confirmed/s counts the confirmations in the load's window shifted by the median time to confirmed, less its first and last second, per second of that window: it falls below the offered rate when a backlog grows. A rate is held when every order is accepted at once, p99 placement is under %s, every order settles and confirmations keep up; a rate not held is run once more (\"again\"), and is held if that run holds it.\n\n", r.slo())
		w("| step | offered/s | placed/s | confirmed/s | placement p50 / p90 / p99 / p99.9 ms | to confirmed p50 / p90 / p99 / p99.9 ms | failed | refused | unsettled | held |\n")
		w("|---|---:|---:|---:|---|---|---:|---:|---:|---|\n")
		steps := append([]orderStep(nil), o.Steps...)
		if o.Sustained != nil {
			steps = append(steps, *o.Sustained)
		}
		for _, s := range steps {
			held := yes(s.Held)
			if !s.Held {
				held += ": " + s.Why
			}
			w("| %s (%.0f s) | %d | %.0f | %.0f | %s | %s | %d | %d | %d | %s |\n", s.Name, s.Seconds, s.Rate, s.PlacedPerSec, s.ConfirmedPerSec,
				pcts(s.Placement, "%.1f"), pcts(s.ToConfirmed, "%.0f"), s.Failed, s.Refused, s.Unsettled, held)
		}
		w("\nHighest rate held: **%d orders/s**.\n\n", o.MaxHeld)
		c := o.Check
		w("**Ledger check** (every order of the run): %d accepted (%d of them recovered by a retry with the same key), %d confirmed, %d cancelled, **%d lost**, %d with no answer at all, %d refused at capacity (nothing placed); ",
			c.Accepted, c.Recovered, c.Confirmed, c.Cancelled, c.Lost, c.Unknown, c.Refused)
		w("stock plus confirmed quantities equals the starting stock: %s; balances match the confirmed totals: %s. Check %s.\n",
			yes(c.StockOK), yes(c.BalanceOK), map[bool]string{true: "passed", false: "**failed**"}[c.Passed])
		for _, p := range c.Problems {
			w("- %s\n", p)
		}
		w("\n")
		var costed []orderStep
		for _, s := range o.Steps {
			if s.Held && s.Rate == o.MaxHeld && s.Cost != nil {
				costed = append(costed, s)
				break
			}
		}
		if s := o.Sustained; s != nil && s.Cost != nil {
			costed = append(costed, *s)
		}
		for _, s := range costed {
			w("### Cost: %s\n\n", s.Cost.Window)
			w("CPU seconds (utime + stime from `/proc/<pid>/stat`) and peak RSS (`VmHWM`, reset at the start of the window through `clear_refs`) of every process: %d orders accepted in %.0f s.\n\n",
				s.Cost.Orders, s.Cost.Seconds)
			w("| process | CPU s | CPU s per 1000 orders | cores busy | peak RSS MiB |\n|---|---:|---:|---:|---:|\n")
			for _, p := range s.Cost.Processes {
				w("| %s | %.1f | %.2f | %.2f | %.0f |\n", p.Name, p.CPUSeconds, p.CPUPer1000, p.CPUShare, p.PeakRSSMiB)
			}
			w("| **apps and sidecars** | **%.1f** | **%.2f** | **%.2f** | **%.0f** |\n\n", s.Cost.SystemCPU, s.Cost.SystemPer1000, s.Cost.SystemCPU/s.Cost.Seconds, s.Cost.SystemRSSMiB)
			w("Redis is shared with anything else on the machine that uses it; the bench's own CPU is the load generator's and the ledger's.\n\n")
		}
		writeProfiles(w, o.Profiles, o.ProfileWindow)
	}

	if o := r.Overhead; o != nil && len(o.Paths) > 0 {
		w("## Sidecar overhead: hello's GET /service\n\n")
		w("At a fixed %d requests/s (%s rounds of %s, the paths interleaved; the median of each percentile over the rounds). ", o.FixedRate, r.Settings["rounds"], r.Settings["fixedDuration"])
		w("Added is the path's percentile less the direct path's. Dapr publishes +%.2f / +%.2f / +%.2f ms (p50/p90/p99) for two sidecars at 1000 requests/s.\n\n", daprPublished.P50, daprPublished.P90, daprPublished.P99)
		w("| path | through | p50 / p90 / p99 / p99.9 ms | added p50 / p90 / p99 ms |\n|---|---|---|---|\n")
		for _, p := range o.Paths {
			added := "-"
			if p.Added != nil {
				added = fmt.Sprintf("+%.2f / +%.2f / +%.2f", p.Added.P50, p.Added.P90, p.Added.P99)
			}
			w("| %s | %s | %s | %s |\n", p.Name, p.What, pcts(p.FixedMedian, "%.3f"), added)
		}
		w("\nCPU per 1000 requests at the fixed rate, by process (CPU ms, from `/proc/<pid>/stat`; the rest of the system idles):\n\n")
		cols := []string{"gateway", "gateway daprd", "hello daprd", "hello", "tornado", "bench (load generator)"}
		w("| path | %s |\n|---|%s\n", strings.Join(cols, " | "), strings.Repeat("---:|", len(cols)))
		for _, p := range o.Paths {
			var cells []string
			for _, c := range cols {
				cells = append(cells, fmt.Sprintf("%.0f", p.CPU[c]))
			}
			w("| %s | %s |\n", p.Name, strings.Join(cells, " | "))
		}
		w("\n### Highest rate held\n\n")
		w("Doubling from %s/s, then bisecting to within 10%%, %s per rate: held means every request answered 200, at 97%% of the rate asked or better, p99 under %s.\n\n", r.Settings["maxStart"], r.Settings["maxDuration"], r.slo())
		w("| path | highest rate held | answered/s there | rates tried (held ✓) |\n|---|---:|---:|---|\n")
		for _, p := range o.Paths {
			var tried []string
			for _, pb := range p.Probes {
				mark := "✗"
				if pb.Held {
					mark = "✓"
				}
				tried = append(tried, fmt.Sprintf("%d%s (p99 %.1f ms)", pb.Rate, mark, pb.Latency.P99))
			}
			w("| %s | %d/s | %.0f | %s |\n", p.Name, p.MaxHeld, p.MaxThroughput, strings.Join(tried, ", "))
		}
		if o.Tornado != "" {
			w("\nTornado: %s.\n", o.Tornado)
		}
		for _, p := range o.Paths {
			if p.Foreign > 0 {
				w("\n%s: %d answers came from another system's hello (Dapr's mDNS is machine-wide).\n", p.Name, p.Foreign)
			}
		}
		w("\n")
	}
	return b.String()
}

func pcts(l latencies, f string) string {
	if l.N == 0 {
		return "-"
	}
	return fmt.Sprintf(f+" / "+f+" / "+f+" / "+f, l.P50, l.P90, l.P99, l.P999)
}

// redraw renders the summary of the last run again from its JSON (with the
// targets judged again), so that a
// change to the report's form needs no new measurement.
func redraw(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	r.Targets = targetsOf(&r)
	return r.write(dir, dir)
}

// writeProfiles writes where each process's CPU went in the sustained run.
func writeProfiles(w func(string, ...any), ps []profileSummary, window string) {
	if len(ps) == 0 {
		return
	}
	w("### Where the time goes: CPU profiles of the sustained run\n\n")
	w("Go's CPU profile of every app and every daprd (`/debug/pprof/profile`, %s), ", window)
	w("saved under `raw/<run>/profiles/` for `go tool pprof`, and each process's CPU time over the same window from `/proc`. ")
	w("Each share is of that CPU time: *sysmon* is the runtime's monitor thread (`/proc/<pid>/task`), which the profiles do not sample; ")
	w("of the rest, as the samples divide it, *syscalls* were taken in a system call (the kernel's work for the process), ")
	w("*GC* in the collector and its assists, *stacks* in goroutines growing their stacks, *ours* in daprshop's own code; ")
	w("a sample may count in more than one. Then the functions the most samples were taken in.\n\n")
	w("| process | CPU s | sampled s | sysmon | syscalls | GC | stacks | ours | where the samples were taken |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	pct := func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }
	var all profileSummary
	for _, p := range ps {
		if p.Error != "" {
			w("| %s | - | - | - | - | - | - | - | no profile: %s |\n", p.Process, p.Error)
			continue
		}
		var top []string
		for _, f := range p.Top {
			top = append(top, fmt.Sprintf("`%s` %s", f.Func, pct(f.Share)))
		}
		w("| %s | %.1f | %.1f | %s | %s | %s | %s | %s | %s |\n", p.Process, p.CPUSeconds, p.SampledSeconds, pct(p.Sysmon),
			pct(p.Syscalls), pct(p.GC), pct(p.StackGrowth), pct(p.Ours), strings.Join(top, ", "))
		all.CPUSeconds += p.CPUSeconds
		all.SampledSeconds += p.SampledSeconds
		all.Sysmon += p.Sysmon * p.CPUSeconds
		all.Syscalls += p.Syscalls * p.CPUSeconds
		all.GC += p.GC * p.CPUSeconds
		all.StackGrowth += p.StackGrowth * p.CPUSeconds
		all.Ours += p.Ours * p.CPUSeconds
	}
	if all.CPUSeconds > 0 {
		c := all.CPUSeconds
		w("| **apps and sidecars** | **%.1f** | **%.1f** | **%s** | **%s** | **%s** | **%s** | **%s** | |\n", c, all.SampledSeconds,
			pct(all.Sysmon/c), pct(all.Syscalls/c), pct(all.GC/c), pct(all.StackGrowth/c), pct(all.Ours/c))
	}
	w("\n")
}
