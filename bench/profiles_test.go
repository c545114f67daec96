package main

import (
	"os"
	"os/exec"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSummarizeProfile(t *testing.T) {
	fn := map[string]*profile.Function{}
	loc := func(names ...string) []*profile.Location {
		var out []*profile.Location
		for _, n := range names {
			if fn[n] == nil {
				fn[n] = &profile.Function{ID: uint64(len(fn) + 1), Name: n}
			}
			out = append(out, &profile.Location{Line: []profile.Line{{Function: fn[n]}}})
		}
		return out
	}
	ms := int64(1e6)
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample: []*profile.Sample{
			{Value: []int64{40, 400 * ms}, Location: loc("internal/runtime/syscall/linux.Syscall6", "syscall.write", "net.(*conn).Write")},
			{Value: []int64{20, 200 * ms}, Location: loc("runtime.scanobject", "runtime.gcDrain", "runtime.gcBgMarkWorker")},
			{Value: []int64{10, 100 * ms}, Location: loc("runtime.memmove", "runtime.copystack", "runtime.newstack", "runtime.morestack")},
			{Value: []int64{20, 200 * ms}, Location: loc("github.com/daprshop/daprshop/internal/events.DecodeEnvelope", "main.handle")},
			{Value: []int64{10, 100 * ms}, Location: loc("runtime.futex", "runtime.notesleep")},
		},
	}
	s := profileSummary{Sysmon: 0.2}
	require.NoError(t, summarizeProfile(p, &s))
	assert.InDelta(t, 1.0, s.SampledSeconds, 1e-9)
	// Each share of the samples is of the 80% of the CPU outside sysmon.
	assert.InDelta(t, 0.8*0.5, s.Syscalls, 1e-9, "Syscall6 and futex")
	assert.InDelta(t, 0.8*0.2, s.GC, 1e-9)
	assert.InDelta(t, 0.8*0.1, s.StackGrowth, 1e-9)
	assert.InDelta(t, 0.8*0.2, s.Ours, 1e-9)
	require.Len(t, s.Top, 5)
	assert.Equal(t, "internal/runtime/syscall/linux.Syscall6", s.Top[0].Func)
	assert.InDelta(t, 0.8*0.4, s.Top[0].Share, 1e-9)
	assert.Equal(t, "github.com/daprshop/daprshop/internal/events.DecodeEnvelope", s.Top[1].Func, "ties by name")

	heap := &profile.Profile{SampleType: []*profile.ValueType{{Type: "alloc_space", Unit: "bytes"}}}
	assert.ErrorContains(t, summarizeProfile(heap, &profileSummary{}), "not a CPU profile")
}

func TestSysmonSeconds(t *testing.T) {
	me := os.Getpid()
	sysmon, err := sysmonSeconds(me)
	require.NoError(t, err, "a Go program has a sysmon thread")
	all, err := cpuSeconds(me)
	require.NoError(t, err)
	assert.LessOrEqual(t, sysmon, all)

	sleep := exec.Command("sleep", "5")
	require.NoError(t, sleep.Start())
	defer sleep.Process.Kill()
	_, err = sysmonSeconds(sleep.Process.Pid)
	assert.ErrorContains(t, err, "not a Go program", "sleep has one thread")
	_, err = sysmonSeconds(1 << 30)
	assert.Error(t, err, "no such process")
}
