package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/daprshop/daprshop/internal/runner"
)

// settlePause follows every step, so that the events still in flight after its
// orders settled (notifications, releases) do not weigh on the next.
const settlePause = 5 * time.Second

// profileDelay is how far into the sustained run the profiles start.
const profileDelay = 10 * time.Second

// finalDrain bounds the wait for the last orders to settle at the end.
const finalDrain = 10 * time.Minute

// orderStep is one rate of order placement, held for a while, and what became
// of the orders it placed.
type orderStep struct {
	Name     string  `json:"name"`
	Rate     int     `json:"rate"`
	Seconds  float64 `json:"seconds"`
	Sent     int     `json:"sent"`
	Accepted int     `json:"accepted"`
	// Failed got no 202 at first: an error, a timeout or a 5xx other than a
	// refusal.
	Failed int `json:"failed"`
	// Refused got 503 because orders was at capacity: nothing was placed.
	Refused   int `json:"refused"`
	Recovered int `json:"recoveredByRetry"`
	Confirmed int `json:"confirmed"`
	Cancelled int `json:"cancelled"`
	Unsettled int `json:"unsettled"`
	// PlacedPerSec is orders accepted per second of load.
	PlacedPerSec float64 `json:"placedPerSec"`
	// ConfirmedPerSec counts the confirmations that happened while the load ran,
	// after a warm-up of a few seconds, per second: the rate the saga sustains.
	ConfirmedPerSec float64   `json:"confirmedPerSec"`
	Placement       latencies `json:"placementMs"`
	Refusal         latencies `json:"refusalMs"`
	ToConfirmed     latencies `json:"toConfirmedMs"`
	DrainSeconds    float64   `json:"drainSeconds"`
	Held            bool      `json:"held"`
	Why             string    `json:"why,omitempty"`
	Cost            *cost     `json:"cost,omitempty"`
}

// ordersResult is the orders phase.
type ordersResult struct {
	Steps []orderStep `json:"steps"`
	// MaxHeld is the highest rate held: every order accepted, p99 placement
	// under the SLO, and every order settled as fast as they came.
	MaxHeld   int        `json:"maxHeldRate"`
	Sustained *orderStep `json:"sustained,omitempty"`
	// Profiles are CPU profiles of every app and sidecar during the sustained
	// run, the largest first.
	Profiles []profileSummary `json:"profiles,omitempty"`
	// ProfileWindow says when they were taken.
	ProfileWindow string       `json:"profileWindow,omitempty"`
	Check         check        `json:"check"`
	Lost          int          `json:"lost"`
	Setup         orderSetting `json:"setup"`
}

type orderSetting struct {
	Products  int `json:"products"`
	Customers int `json:"customers"`
}

// orderBench runs order steps against one system, filing every order in one
// ledger.
type orderBench struct {
	cfg    config
	ledger *ledger
	client *http.Client
	procs  []proc
	logf   func(string, ...any)
}

func newOrderBench(cfg config, s *shop, runID string, procs []proc, logf func(string, ...any)) *orderBench {
	return &orderBench{
		cfg:    cfg,
		ledger: newLedger(s, runID, uint64(time.Now().UnixNano())),
		client: loadClient(15 * time.Second),
		procs:  procs,
		logf:   logf,
	}
}

// step places orders at rate for d, then waits for them to settle, and says
// whether the rate was held.
func (b *orderBench) step(ctx context.Context, name string, rate int, d time.Duration, measureCost bool) orderStep {
	b.ledger.mu.Lock()
	b.ledger.step++
	id := b.ledger.step
	b.ledger.mu.Unlock()

	var meter *costMeter
	if measureCost {
		meter = startCost(b.procs)
	}
	start := time.Now()
	// Open loop: vegeta starts each request on time whatever the ones before
	// it are doing, so a slow system shows as latency, not as a lower rate.
	attacker := vegeta.NewAttacker(vegeta.Client(b.client))
	pacer := vegeta.Rate{Freq: rate, Per: time.Second}
	for res := range attacker.Attack(b.ledger.targeter(id), pacer, d, name) {
		b.ledger.record(res)
		if ctx.Err() != nil {
			attacker.Stop()
		}
	}
	loadEnd := time.Now()
	defer time.Sleep(settlePause)
	es := b.ledger.stepEntries(id)
	recovered, _ := b.ledger.recover(ctx, es, b.cfg.drainTimeout)
	unsettled := b.ledger.drain(ctx, es, b.cfg.drainTimeout)
	drained := time.Now()

	// The load lasts d, unless it was stopped: per-second figures divide by
	// that, not by the time to the last answer, which adds that answer's
	// latency (up to the client's timeout under overload).
	load := min(loadEnd.Sub(start), d)
	st := orderStep{Name: name, Rate: rate, Seconds: load.Seconds(), Sent: len(es),
		Recovered: recovered, Unsettled: unsettled, DrainSeconds: drained.Sub(loadEnd).Seconds()}
	var placement, refusal, toConfirmed []time.Duration
	var confirmedAt []time.Time
	for _, e := range es {
		switch {
		case e.code == http.StatusAccepted && e.orderID != "":
			placement = append(placement, e.latency)
		case e.refused:
			st.Refused++
			refusal = append(refusal, e.latency)
		default:
			st.Failed++
		}
		if e.orderID != "" {
			st.Accepted++
		}
		if e.final == nil {
			continue
		}
		switch e.final.Status {
		case "confirmed":
			st.Confirmed++
			at := e.final.settledAt()
			toConfirmed = append(toConfirmed, at.Sub(e.final.placedAt()))
			confirmedAt = append(confirmedAt, at)
		case "cancelled":
			st.Cancelled++
		}
	}
	st.PlacedPerSec = float64(st.Accepted-st.Recovered) / st.Seconds
	st.Placement = summarize(placement)
	st.Refusal = summarize(refusal)
	st.ToConfirmed = summarize(toConfirmed)
	st.ConfirmedPerSec = steadyRate(confirmedAt, start, load, time.Duration(st.ToConfirmed.P50*float64(time.Millisecond)))
	if meter != nil {
		st.Cost = meter.stop(fmt.Sprintf("%s: %d orders/s for %s, and the drain", name, rate, d), st.Accepted)
	}

	switch {
	case st.Failed > 0:
		st.Why = fmt.Sprintf("%d of %d placements failed", st.Failed, st.Sent)
	case st.Refused > 0:
		st.Why = fmt.Sprintf("%d of %d placements refused at capacity (p99 of a refusal %.1f ms)", st.Refused, st.Sent, st.Refusal.P99)
	case st.Placement.P99 >= ms(b.cfg.slo):
		st.Why = fmt.Sprintf("p99 placement %.1f ms is over %s", st.Placement.P99, b.cfg.slo)
	case st.PlacedPerSec < 0.95*float64(rate):
		st.Why = fmt.Sprintf("only %.0f orders/s placed", st.PlacedPerSec)
	case st.Unsettled > 0:
		st.Why = fmt.Sprintf("%d orders not settled %s after the load", st.Unsettled, b.cfg.drainTimeout)
	case st.ConfirmedPerSec+float64(st.Cancelled)/st.Seconds < 0.95*float64(rate):
		st.Why = fmt.Sprintf("confirmations fell behind: %.0f/s", st.ConfirmedPerSec)
	default:
		st.Held = true
	}
	verdict := "held"
	if !st.Held {
		verdict = "not held: " + st.Why
	}
	b.logf("orders %-9s %4d/s: placed %.0f/s, confirmed %.0f/s, p99 placement %.1f ms, p99 to confirmed %.0f ms, %d refused, %d unsettled; %s",
		name, rate, st.PlacedPerSec, st.ConfirmedPerSec, st.Placement.P99, st.ToConfirmed.P99, st.Refused, st.Unsettled, verdict)
	return st
}

// steadyRate is the rate of the confirmations at, per second, for a load that
// started at start and lasted load: those in the load's window shifted by lag,
// the median time to confirmed, which is the rate the saga confirms at while
// it keeps up, and less when a backlog grows and pushes confirmations past the
// window. The window leaves out its first and last second (a quarter of the
// load, if that is less): no order is placed before the load or after it, so
// at either edge the confirmations faster or slower than the median fall out
// of the window with nothing to take their place, and the whole window would
// count a steady 250/s, every order confirmed, as 249.95/s.
func steadyRate(confirmedAt []time.Time, start time.Time, load, lag time.Duration) float64 {
	edge := min(time.Second, load/4)
	from, to := start.Add(lag+edge), start.Add(lag+load-edge)
	n := 0
	for _, at := range confirmedAt {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return float64(n) / (load - 2*edge).Seconds()
}

// settle waits while orders keep settling, and ends after a drain timeout in
// which none did, or after finalDrain: what is left unsettled then is lost.
func (b *orderBench) settle(ctx context.Context) {
	deadline := time.Now().Add(finalDrain)
	for prev := -1; ; {
		n := b.ledger.drain(ctx, b.ledger.all(), b.cfg.drainTimeout)
		if n == 0 || (prev >= 0 && n >= prev) || time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		b.logf("%d orders not settled yet, fewer than a drain timeout ago: waiting on", n)
		prev = n
	}
}

// runOrders sets the shop up, places orders at rising rates, searches for the
// highest rate held, runs the sustained rate with its cost measured, and checks
// the ledger against the stock and the balances.
func runOrders(ctx context.Context, cfg config, sys *runner.System, rawDir string, logf func(string, ...any)) (*ordersResult, error) {
	s := newShop(sys)
	runID := time.Now().Format("0102150405")
	if err := s.setUp(ctx, "bench", runID, cfg.products, cfg.customers); err != nil {
		return nil, fmt.Errorf("set up products and customers: %w", err)
	}
	res := &ordersResult{Setup: orderSetting{Products: cfg.products, Customers: cfg.customers}}
	b := newOrderBench(cfg, s, runID, processes(sys), logf)

	// A short warm-up, so that the first step does not pay for cold connections.
	b.step(ctx, "warm-up", 20, 5*time.Second, false)

	// A rate not held is run once more, and counts as held if that run holds
	// it: on a shared machine, one hiccup (a p99 of 108 ms at 50/s, seen in a
	// run on a machine that had held 170/s half an hour before) would
	// otherwise end the ladder and send the search below it. Both runs are
	// reported.
	held, notHeld := 0, 0
	for _, r := range cfg.orderRates {
		ok, steps := holdsOnRetry(func(name string) orderStep { return b.step(ctx, name, r, cfg.orderDuration, true) }, "ladder")
		res.Steps = append(res.Steps, steps...)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !ok {
			notHeld = r
			break
		}
		held = r
	}
	// When even the first rate is not held, halve it until one is, so that the
	// bisection below has a floor.
	try := func(r int) {
		ok, steps := holdsOnRetry(func(name string) orderStep { return b.step(ctx, name, r, cfg.searchDuration, true) }, "search")
		res.Steps = append(res.Steps, steps...)
		if ok {
			held = r
		} else {
			notHeld = r
		}
	}
	for held == 0 && notHeld > 10 && ctx.Err() == nil {
		try(notHeld / 2)
	}
	for i := 0; i < cfg.searchSteps && held > 0 && notHeld > 0 && notHeld-held > 10; i++ {
		mid := (held + notHeld) / 2 / 10 * 10
		if mid <= held {
			break
		}
		try(mid)
	}
	res.MaxHeld = held

	if cfg.sustainRate > 0 {
		// The profiles leave out the run's first seconds, as the cost's
		// window does not: they show the system loaded, not its warm-up.
		var prof *profiling
		if cfg.profile > 0 {
			delay := min(profileDelay, cfg.sustainDuration/4)
			d := min(cfg.profile, cfg.sustainDuration-delay).Truncate(time.Second)
			prof = startProfiles(ctx, profileTargets(sys, b.procs), rawDir, delay, d)
			res.ProfileWindow = fmt.Sprintf("%s from %s into the run", d, delay)
		}
		st := b.step(ctx, "sustained", cfg.sustainRate, cfg.sustainDuration, true)
		res.Sustained = &st
		if prof != nil {
			res.Profiles = prof.wait()
		}
	}

	// Orders that were slow to settle in their step get a last chance: after an
	// overload the system works through its backlog for minutes. The wait goes
	// on while orders keep settling, and ends after a drain timeout in which
	// none did (or after finalDrain): what is left then is lost.
	logf("final drain, recovery and ledger check")
	b.settle(ctx)
	// Orders whose placement got no answer (an overloaded step) are asked for
	// again with their Idempotency-Key now that the system is calm: it may have
	// accepted them all the same.
	if recovered, unknown := b.ledger.recover(ctx, b.ledger.all(), finalDrain); recovered > 0 || unknown > 0 {
		logf("retried the orders without an answer: %d were accepted after all, %d still unknown", recovered, unknown)
		b.settle(ctx)
	}
	c, err := b.ledger.verify(ctx)
	if err != nil {
		return nil, err
	}
	res.Check, res.Lost = c, c.Lost
	if err := b.ledger.save(filepath.Join(rawDir, "ledger.csv")); err != nil {
		return nil, err
	}
	logf("ledger: %d accepted, %d confirmed, %d cancelled, %d lost, %d unknown, %d refused; stock %v, balances %v",
		c.Accepted, c.Confirmed, c.Cancelled, c.Lost, c.Unknown, c.Refused, ok(c.StockOK), ok(c.BalanceOK))
	for _, p := range c.Problems {
		logf("  %s", p)
	}
	return res, nil
}

// holdsOnRetry runs a step named name and, when it does not hold its rate,
// once more, named name + ", again"; it reports whether either held, and the
// steps run.
func holdsOnRetry(run func(name string) orderStep, name string) (bool, []orderStep) {
	st := run(name)
	if st.Held {
		return true, []orderStep{st}
	}
	again := run(name + ", again")
	return again.Held, []orderStep{st, again}
}

func ok(b bool) string {
	if b {
		return "match"
	}
	return "DO NOT MATCH"
}

// latencies are percentiles in milliseconds.
type latencies struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func summarize(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) float64 {
		i := int(p*float64(len(ds))+0.5) - 1
		i = max(0, min(i, len(ds)-1))
		return ms(ds[i])
	}
	return latencies{N: len(ds), P50: q(0.50), P90: q(0.90), P99: q(0.99), P999: q(0.999), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
