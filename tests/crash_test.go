package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoOrderLostWhenServicesCrash places orders steadily while payments,
// inventory, notifications, and then orders itself die (app and sidecar killed at once, as
// when their machine dies) and come back as new instances, and checks what a
// shop owner would: every order accepted ends confirmed or cancelled with a
// reason, a client that retried through orders' outage with the same
// Idempotency-Key got one order, and every effect happened exactly once, so
// the stock left plus the quantities confirmed is the stock at the start, and
// every balance is the start less the totals confirmed for that customer; and
// notifications told every customer of every order's outcome.
//
// On the MQTT set the broker drops what is published for an app while its
// sidecar is away (clean sessions), so there the orders' reconciler is what
// finishes the orders whose events were lost (services/orders/reconcile.go).
func TestNoOrderLostWhenServicesCrash(t *testing.T) {
	const (
		startStock   = 10_000
		startBalance = 5_000 // enough for about a third of the orders: the rest are declined
		priceCents   = 100
	)
	p := newProduct(t, priceCents, startStock)
	customers := make([]string, 4)
	for i := range customers {
		customers[i] = newCustomer(t, startBalance)
	}

	// The outages run beside the placements: each app is killed, stays away a
	// while, and a new instance takes its place.
	type outage struct {
		app         string
		killed, new time.Time
	}
	apps := []string{"payments", "inventory", "notifications", "orders"}
	outages := make(chan outage, len(apps))
	chaosErr := make(chan error, 1)
	go func() {
		defer close(outages)
		for _, app := range apps {
			time.Sleep(2 * time.Second)
			victim := sys.App(app)
			if victim == nil {
				chaosErr <- fmt.Errorf("no instance of %s to kill", app)
				return
			}
			o := outage{app: app, killed: time.Now()}
			sys.Kill(victim)
			time.Sleep(3 * time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			_, err := sys.StartInstance(ctx, app, nil)
			cancel()
			if err != nil {
				chaosErr <- fmt.Errorf("start %s again: %w", app, err)
				return
			}
			o.new = time.Now()
			outages <- o
		}
		chaosErr <- nil
	}()

	type placed struct {
		order
		tried    time.Time // the first attempt
		accepted time.Time
		retries  int
	}
	var all []placed
	chaosDone := false
	var quietSince time.Time
	for i := 0; !chaosDone || time.Since(quietSince) < 2*time.Second; i++ {
		select {
		case err := <-chaosErr:
			require.NoError(t, err)
			chaosDone, quietSince = true, time.Now()
		default:
		}
		line := orderLine{ProductID: p.ID, Quantity: int64(i%3 + 1)}
		tried := time.Now()
		o, retries := placeThroughOutage(t, customers[i%len(customers)], line)
		all = append(all, placed{order: o, tried: tried, accepted: time.Now(), retries: retries})
		time.Sleep(40 * time.Millisecond)
	}
	for o := range outages {
		during, retried := 0, 0
		for _, pl := range all {
			// Placed while the app was away: for orders itself, a placement
			// retried until a new instance took it.
			if pl.tried.Before(o.new) && pl.accepted.After(o.killed) {
				during++
				if pl.retries > 0 {
					retried++
				}
			}
		}
		t.Logf("%s away for %s; %d orders placed meanwhile, %d of them retried",
			o.app, o.new.Sub(o.killed).Round(100*time.Millisecond), during, retried)
		assert.Positive(t, during, "orders were placed while %s was away", o.app)
	}
	for _, c := range customers {
		var want []string
		for _, pl := range all {
			if pl.CustomerID == c {
				want = append(want, pl.ID)
			}
		}
		var got []string
		for _, o := range ordersOf(t, c) {
			got = append(got, o.ID)
		}
		assert.ElementsMatch(t, want, got, "customer %s has one order per placement, retries included", c)
	}

	confirmedQty := int64(0)
	spent := map[string]int64{}
	counts := map[string]int{}
	final := map[string]string{} // the type of each order's final event
	deadline := time.Now().Add(2 * time.Minute)
	for _, pl := range all {
		var o order
		for {
			o = getOrder(t, pl.ID)
			if o.Status == "confirmed" || o.Status == "cancelled" || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		require.Contains(t, []string{"confirmed", "cancelled"}, o.Status,
			"order %s did not settle: %+v\n%s", o.ID, o, logsOnFailure())
		counts[o.Status+" "+o.Reason]++
		final[o.ID] = "daprshop.order." + o.Status + ".v1"
		if o.Status == "cancelled" {
			assert.NotEmpty(t, o.Reason, "order %s cancelled without a reason", o.ID)
			continue
		}
		confirmedQty += o.Lines[0].Quantity
		spent[o.CustomerID] += o.TotalCents
	}
	t.Logf("%d orders: %v", len(all), counts)
	require.Positive(t, confirmedQty, "some orders were confirmed")
	// A cancellation releases its reservation after the order is final, so the
	// stock may still be catching up with the last of them.
	want := int64(startStock) - confirmedQty
	left := stock(t, p.ID)
	for until := time.Now().Add(time.Minute); left != want && time.Now().Before(until); left = stock(t, p.ID) {
		time.Sleep(250 * time.Millisecond)
	}
	assert.Equal(t, want, left, "each confirmed order reserved its stock once, and no other kept any")
	for _, c := range customers {
		assert.Equal(t, int64(startBalance)-spent[c], balance(t, c), "customer %s was charged once per confirmed order, and for no other", c)
	}

	// notifications came back too: each customer is told of every order's
	// outcome, whenever notifications was away.
	ids := make([]string, 0, len(final))
	for id := range final {
		ids = append(ids, id)
	}
	untold := func() []string {
		var out []string
		for from := 0; from < len(ids); from += 100 {
			batch := ids[from:min(from+100, len(ids))]
			told := map[string]bool{}
			for _, n := range lookup(t, "/api/notifications/notified?orderIds="+strings.Join(batch, ",")) {
				told[n.OrderID] = n.Type == final[n.OrderID]
			}
			for _, id := range batch {
				if !told[id] {
					out = append(out, id)
				}
			}
		}
		return out
	}
	missed := untold()
	for until := time.Now().Add(time.Minute); len(missed) > 0 && time.Now().Before(until); missed = untold() {
		time.Sleep(500 * time.Millisecond)
	}
	if len(missed) > 0 {
		assert.Empty(t, missed, "customers never told of these orders' outcome\n%s", logsOnFailure())
	}
}

// placeThroughOutage places an order as a patient client does: an answer other
// than 202 or a 4xx (the gateway's 502 or 503 while orders is away, a refusal
// at capacity) is retried with the same Idempotency-Key, for a minute at most.
// It returns the order and how many times it retried.
func placeThroughOutage(t *testing.T, customerID string, line orderLine) (order, int) {
	t.Helper()
	key := uniq("crash")
	body := mustJSON(t, placeRequest{CustomerID: customerID, Items: []orderLine{line}})
	deadline := time.Now().Add(time.Minute)
	for retries := 0; ; retries++ {
		r := call(t, http.MethodPost, "/api/orders", body, map[string]string{"Idempotency-Key": key})
		if r.status == http.StatusAccepted {
			var o order
			r.json(t, &o)
			return o, retries
		}
		require.True(t, r.status >= 500 && time.Now().Before(deadline),
			"place order under %s: %d %s", key, r.status, r.body)
		time.Sleep(250 * time.Millisecond)
	}
}
