package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSidecarSettingsSayWhatDaprdGets(t *testing.T) {
	const sysmon = "GODEBUG=schedtrace=2147483647"
	assert.Equal(t, []string{"GOGC=400", "GOMAXPROCS=1", sysmon}, sidecarSettings(envOf(map[string]string{"HOME": "/root"})))
	assert.Equal(t, []string{"GOGC=off", "GOMAXPROCS=1", sysmon}, sidecarSettings(envOf(map[string]string{"GOGC": "off"})))

	r := &report{SidecarEnv: sidecarSettings(envOf(nil)), Settings: map[string]string{}}
	assert.True(t, strings.Contains(r.markdown(), "every daprd with `GOGC=400 GOMAXPROCS=1 GODEBUG=schedtrace=2147483647`"), "the report says what ran")
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSteadyRate(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const rate, seconds = 250, 60
	lag := time.Second
	// confirmed returns when each order of a steady load is confirmed: placed
	// every 1/rate s, confirmed lag later, give or take up to jitter, and
	// behind by a backlog that grows by grow per order.
	confirmed := func(jitter, grow time.Duration) []time.Time {
		var out []time.Time
		for i := range rate * seconds {
			placed := start.Add(time.Duration(i) * time.Second / rate)
			j := time.Duration(i*7919%201-100) * jitter / 100
			out = append(out, placed.Add(lag+j+time.Duration(i)*grow))
		}
		return out
	}
	assert.InDelta(t, rate, steadyRate(confirmed(0, 0), start, seconds*time.Second, lag), 0.01)
	assert.InDelta(t, rate, steadyRate(confirmed(30*time.Millisecond, 0), start, seconds*time.Second, lag), 0.03,
		"confirmations spread around the median, every order confirmed: the offered rate")
	assert.Less(t, steadyRate(confirmed(0, time.Millisecond), start, seconds*time.Second, lag), 0.9*rate,
		"a backlog that grows by a millisecond an order falls behind")
}

// TestAddedLatencyIsJudgedOnBothPaths: the report judges the gateway path, as
// the issue asks, and the two sidecars alone, as Dapr's own test measures them,
// each against every one of Dapr's three percentiles.
func TestAddedLatencyIsJudgedOnBothPaths(t *testing.T) {
	r := &report{Overhead: &overheadResult{FixedRate: 1000, Paths: []pathResult{
		{path: path{Name: pathDirect}},
		{path: path{Name: pathTwo}, Added: &latencies{P50: 0.78, P90: 1.39, P99: 2.9}},
		{path: path{Name: pathGateway}, Added: &latencies{P50: 1.2, P90: 1.4, P99: 2.0}},
	}}}
	var got []target
	for _, tg := range targetsOf(r) {
		if strings.HasPrefix(tg.Goal, "added latency") {
			got = append(got, tg)
		}
	}
	if assert.Len(t, got, 2) {
		assert.Contains(t, got[0].Goal, "through the gateway and two sidecars at 1000/s")
		assert.Equal(t, "+1.20 / +1.40 / +2.00 ms", got[0].Measured)
		assert.False(t, got[0].Met, "p50 over Dapr's 1.06 ms")
		assert.Contains(t, got[1].Goal, "two sidecars alone")
		assert.True(t, got[1].Met, "every percentile at or under Dapr's")
	}

	r.Overhead.Paths[1].Added = nil
	assert.Len(t, targetsOf(r), 1, "a path not measured is not judged")
}

// TestARateNotHeldIsRunOnceMore: a step that misses its rate is run again, and
// the rate counts as held only if that run holds it; both runs are reported.
func TestARateNotHeldIsRunOnceMore(t *testing.T) {
	runs := func(held ...bool) (func(string) orderStep, *[]string) {
		var names []string
		return func(name string) orderStep {
			names = append(names, name)
			return orderStep{Name: name, Held: held[len(names)-1]}
		}, &names
	}

	run, names := runs(true)
	ok, steps := holdsOnRetry(run, "ladder")
	assert.True(t, ok)
	assert.Len(t, steps, 1, "a rate held is not run again")
	assert.Equal(t, []string{"ladder"}, *names)

	run, names = runs(false, true)
	ok, steps = holdsOnRetry(run, "search")
	assert.True(t, ok, "held on the second run")
	assert.Equal(t, []string{"search", "search, again"}, *names)
	assert.Len(t, steps, 2)

	run, _ = runs(false, false)
	ok, steps = holdsOnRetry(run, "search")
	assert.False(t, ok, "missed twice")
	assert.Len(t, steps, 2)
}
