package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/daprshop/daprshop/internal/runner"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100
// on every Linux the project runs on.
const clockTicks = 100

// proc is one process whose cost is measured.
type proc struct {
	name string
	pid  int
}

// processes lists every process of the system (each app and each daprd), Redis
// and the bench itself, named by what they are.
func processes(sys *runner.System) []proc {
	var out []proc
	for _, pid := range sys.PIDs() {
		cmd := cmdline(pid)
		if len(cmd) == 0 {
			continue
		}
		name := filepath.Base(cmd[0])
		if name == "daprd" {
			name = flagValue(cmd, "--app-id") + " daprd"
		}
		out = append(out, proc{name: name, pid: pid})
	}
	if pid := redisPID(); pid > 0 {
		out = append(out, proc{name: "redis-server", pid: pid})
	}
	out = append(out, proc{name: "bench (load generator)", pid: os.Getpid()})
	return out
}

// redisPID asks the Redis the components use for its process id.
func redisPID() int {
	out, err := exec.Command("redis-cli", "-p", "6379", "info", "server").Output()
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "process_id:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// cpuSeconds reads the user and system CPU time pid has used.
func cpuSeconds(pid int) (float64, error) {
	return statCPU(fmt.Sprintf("/proc/%d/stat", pid))
}

// sysmonSeconds reads the CPU time of the sysmon thread of pid, a Go program:
// the runtime's monitor, which Go's own CPU profiles do not sample. It is the
// first thread the runtime starts after the main one, so the second by id
// (unless thread ids wrapped around in between).
func sysmonSeconds(pid int) (float64, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var tids []int
	for _, e := range entries {
		if t, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, t)
		}
	}
	if len(tids) < 2 {
		return 0, fmt.Errorf("process %d has %d threads: not a Go program", pid, len(tids))
	}
	slices.Sort(tids)
	return statCPU(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tids[1]))
}

// statCPU reads the user and system CPU time from a process's or a thread's
// stat file.
func statCPU(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses; the fields that follow
	// the last ')' are fixed: state is field 3, utime 14 and stime 15.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("%s: too few fields", path)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: bad utime or stime", path)
	}
	return float64(utime+stime) / clockTicks, nil
}

// peakRSS reads VmHWM, the peak resident set size of pid, in MiB.
func peakRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f kB", &kb)
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux 4.0 and
// later), so that the peak read later belongs to the window measured.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// costMeter measures the CPU and peak memory of a set of processes over a window.
type costMeter struct {
	procs []proc
	cpu0  map[int]float64
	reset map[int]bool
	start time.Time
}

func startCost(procs []proc) *costMeter {
	m := &costMeter{procs: procs, cpu0: map[int]float64{}, reset: map[int]bool{}, start: time.Now()}
	for _, p := range procs {
		m.reset[p.pid] = resetPeakRSS(p.pid)
		m.cpu0[p.pid], _ = cpuSeconds(p.pid)
	}
	return m
}

// processCost is what one process spent in a window.
type processCost struct {
	Name       string  `json:"name"`
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpuSeconds"`
	CPUPer1000 float64 `json:"cpuSecondsPer1000Orders"`
	// CPUShare is the process's CPU time over the window's wall time: 1.0 is one
	// core busy the whole window.
	CPUShare   float64 `json:"cpuCores"`
	PeakRSSMiB float64 `json:"peakRssMiB"`
	// PeakInWindow says the peak was reset at the window's start; otherwise it
	// is the peak since the process started.
	PeakInWindow bool `json:"peakInWindow"`
}

// cost is what every process spent in one window of the run.
type cost struct {
	Window        string        `json:"window"`
	Orders        int           `json:"orders"`
	Seconds       float64       `json:"seconds"`
	Processes     []processCost `json:"processes"`
	SystemCPU     float64       `json:"systemCpuSeconds"`
	SystemPer1000 float64       `json:"systemCpuSecondsPer1000Orders"`
	SystemRSSMiB  float64       `json:"systemPeakRssMiB"`
}

// stop ends the window; orders is how many orders it handled.
func (m *costMeter) stop(window string, orders int) *cost {
	c := &cost{Window: window, Orders: orders, Seconds: time.Since(m.start).Seconds()}
	for _, p := range m.procs {
		cpu, err := cpuSeconds(p.pid)
		if err != nil {
			continue
		}
		rss, _ := peakRSS(p.pid)
		pc := processCost{Name: p.name, PID: p.pid, CPUSeconds: cpu - m.cpu0[p.pid], PeakRSSMiB: rss, PeakInWindow: m.reset[p.pid]}
		pc.CPUShare = pc.CPUSeconds / c.Seconds
		if orders > 0 {
			pc.CPUPer1000 = pc.CPUSeconds / float64(orders) * 1000
		}
		c.Processes = append(c.Processes, pc)
		// The system is the apps and their sidecars; Redis is shared with
		// whatever else runs on the machine, and the bench is the client.
		if !strings.HasPrefix(p.name, "redis") && !strings.HasPrefix(p.name, "bench") {
			c.SystemCPU += pc.CPUSeconds
			c.SystemRSSMiB += pc.PeakRSSMiB
		}
	}
	if orders > 0 {
		c.SystemPer1000 = c.SystemCPU / float64(orders) * 1000
	}
	sort.SliceStable(c.Processes, func(i, j int) bool { return c.Processes[i].CPUSeconds > c.Processes[j].CPUSeconds })
	return c
}
