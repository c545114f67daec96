package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"

	"github.com/daprshop/daprshop/internal/runner"
)

// profileSummary is where one process's CPU went, from a CPU profile of it
// and from /proc over the same window. Each share is of the process's CPU
// time, and a sample may count in more than one.
type profileSummary struct {
	Process string `json:"process"`
	// File is the profile, gzipped protobuf for `go tool pprof`, relative to
	// the run's raw folder.
	File  string `json:"file,omitempty"`
	Error string `json:"error,omitempty"`
	// CPUSeconds is what /proc counts for the process over the profile's
	// window, SampledSeconds what the profile sampled.
	CPUSeconds     float64 `json:"cpuSeconds"`
	SampledSeconds float64 `json:"sampledSeconds"`
	// Sysmon is the share of CPUSeconds spent by the runtime's monitor thread
	// (runtime.sysmon), which the profile does not sample: it wakes every 20
	// µs to 10 ms while the process is busy, to take the P back from a long
	// system call and preempt a long-running goroutine.
	Sysmon float64 `json:"sysmon"`
	// GC is the collector's background workers and the allocations' assists.
	GC float64 `json:"gc"`
	// StackGrowth is goroutines growing their stacks (runtime.newstack).
	StackGrowth float64 `json:"stackGrowth"`
	// Syscalls are the samples taken in a system call (their innermost frame
	// is one): the kernel's work for the process, and the entry and return.
	Syscalls float64 `json:"syscalls"`
	// Ours are the samples whose innermost frame is daprshop's own code.
	Ours float64 `json:"ours"`
	// Top are the functions the most samples were taken in.
	Top []funcShare `json:"top"`
}

// funcShare is a function's share of the process's CPU, from the samples in
// which it is the innermost frame.
type funcShare struct {
	Func  string  `json:"func"`
	Share float64 `json:"share"`
}

// profileTarget is a process that serves Go's profiles.
type profileTarget struct {
	name, url string
	pid       int
}

// profileTargets are every app and every sidecar of sys, which the runner
// started with their profiles on, with their pids from procs.
func profileTargets(sys *runner.System, procs []proc) []profileTarget {
	pids := map[string]int{}
	for _, p := range procs {
		pids[p.name] = p.pid
	}
	var out []profileTarget
	for _, in := range sys.All() {
		label := in.AppID
		if len(sys.Instances(in.AppID)) > 1 {
			label = in.Name
		}
		if in.AppProfiles != "" {
			out = append(out, profileTarget{label, in.AppProfiles, pids[label]})
		}
		if in.DaprdProfiles != "" {
			out = append(out, profileTarget{label + " daprd", in.DaprdProfiles, pids[label+" daprd"]})
		}
	}
	return out
}

// profiling is a CPU profile of every target in progress.
type profiling struct {
	wg  sync.WaitGroup
	out []profileSummary
}

// startProfiles takes a CPU profile of every target at once, for d after
// waiting delay, and saves each under dir/profiles/.
func startProfiles(ctx context.Context, targets []profileTarget, dir string, delay, d time.Duration) *profiling {
	p := &profiling{out: make([]profileSummary, len(targets))}
	seconds := max(1, int(d.Seconds()))
	client := &http.Client{Timeout: time.Duration(seconds)*time.Second + 30*time.Second}
	for i, t := range targets {
		p.wg.Go(func() {
			p.out[i] = takeProfile(ctx, client, t, dir, delay, seconds)
		})
	}
	return p
}

// wait waits for every profile and returns their summaries, the busiest
// process first.
func (p *profiling) wait() []profileSummary {
	p.wg.Wait()
	return slices.SortedStableFunc(slices.Values(p.out), func(a, b profileSummary) int {
		return cmp.Compare(b.CPUSeconds, a.CPUSeconds)
	})
}

func takeProfile(ctx context.Context, client *http.Client, t profileTarget, dir string, delay time.Duration, seconds int) profileSummary {
	s := profileSummary{Process: t.name}
	select {
	case <-ctx.Done():
		s.Error = ctx.Err().Error()
		return s
	case <-time.After(delay):
	}
	cpu0, err1 := cpuSeconds(t.pid)
	sysmon0, err2 := sysmonSeconds(t.pid)
	data, err := fetch(ctx, client, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", t.url, seconds))
	if err != nil {
		s.Error = err.Error()
		return s
	}
	cpu1, err3 := cpuSeconds(t.pid)
	sysmon1, err4 := sysmonSeconds(t.pid)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		s.Error = fmt.Sprintf("read /proc: %v", err)
		return s
	}
	s.CPUSeconds = cpu1 - cpu0
	if s.CPUSeconds > 0 {
		// The thread's window starts and ends a moment after the process's,
		// so the share can read a tick over the whole.
		s.Sysmon = min(1, (sysmon1-sysmon0)/s.CPUSeconds)
	}
	s.File = filepath.Join("profiles", strings.ReplaceAll(t.name, " ", "-")+".pb.gz")
	if err := os.MkdirAll(filepath.Join(dir, "profiles"), 0o755); err == nil {
		err = os.WriteFile(filepath.Join(dir, s.File), data, 0o644)
	}
	if err != nil {
		s.File, s.Error = "", err.Error()
	}
	prof, err := profile.ParseData(data)
	if err != nil {
		s.Error = fmt.Sprintf("parse the profile: %v", err)
		return s
	}
	if err := summarizeProfile(prof, &s); err != nil {
		s.Error = err.Error()
	}
	return s
}

func fetch(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, res.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// syscallFuncs are the functions in which a Go program on Linux enters the
// kernel: a sample whose innermost frame is one of them was taken in a system
// call (the profiler's signal arrives as the call returns).
var syscallFuncs = map[string]bool{
	"syscall.Syscall": true, "syscall.Syscall6": true, "syscall.RawSyscall": true, "syscall.RawSyscall6": true,
	"internal/runtime/syscall/linux.Syscall6": true,
	"runtime.futex": true, "runtime.usleep": true, "runtime.write1": true, "runtime.read": true, "runtime.osyield": true,
}

// summarizeProfile fills s from a CPU profile of the window in which s.Sysmon
// was measured.
func summarizeProfile(p *profile.Profile, s *profileSummary) error {
	cpu := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			cpu = i
		}
	}
	if cpu < 0 {
		return fmt.Errorf("not a CPU profile: no cpu/nanoseconds sample type")
	}
	var total int64
	var gc, stack, sys, ours int64
	leaves := map[string]int64{}
	for _, smp := range p.Sample {
		v := smp.Value[cpu]
		total += v
		funcs := sampleFuncs(smp)
		if len(funcs) == 0 {
			continue
		}
		leaf := funcs[0]
		leaves[leaf] += v
		if syscallFuncs[leaf] {
			sys += v
		}
		if strings.HasPrefix(leaf, "github.com/daprshop/") {
			ours += v
		}
		if slices.ContainsFunc(funcs, func(f string) bool {
			return f == "runtime.gcBgMarkWorker" || f == "runtime.gcAssistAlloc" || f == "runtime.bgsweep" || f == "runtime.bgscavenge"
		}) {
			gc += v
		}
		if slices.Contains(funcs, "runtime.newstack") {
			stack += v
		}
	}
	s.SampledSeconds = float64(total) / 1e9
	if total == 0 {
		return nil
	}
	share := func(v int64) float64 { return float64(v) / float64(total) }
	// The shares of the samples are taken as shares of the process's CPU
	// outside sysmon, which the samples leave out.
	rest := max(0, 1-s.Sysmon)
	s.GC, s.StackGrowth, s.Syscalls, s.Ours = rest*share(gc), rest*share(stack), rest*share(sys), rest*share(ours)
	for f, v := range leaves {
		s.Top = append(s.Top, funcShare{Func: f, Share: rest * share(v)})
	}
	slices.SortFunc(s.Top, func(a, b funcShare) int {
		return cmp.Or(cmp.Compare(b.Share, a.Share), cmp.Compare(a.Func, b.Func))
	})
	s.Top = s.Top[:min(len(s.Top), topFuncs)]
	return nil
}

// topFuncs is how many functions a summary names.
const topFuncs = 5

// sampleFuncs are the functions of a sample's stack, the innermost first, with
// inlined calls as frames of their own.
func sampleFuncs(smp *profile.Sample) []string {
	var out []string
	for _, loc := range smp.Location {
		for _, l := range loc.Line {
			if l.Function != nil {
				out = append(out, l.Function.Name)
			}
		}
	}
	return out
}
