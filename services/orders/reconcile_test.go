package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
	"github.com/daprshop/daprshop/internal/events"
)

// newReconcilerEnv is an instance whose reconciler has made its first pass, so
// that it reads the buckets of every order placed afterwards. Its clock moves
// only when the test moves it.
func newReconcilerEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t)
	e.clock.tick = 0
	e.reconcile()
	return e
}

// reconcile makes one reconciler pass, which must succeed, and returns the
// events it published.
func (e *testEnv) reconcile() []daprfake.Event {
	e.t.Helper()
	before := len(e.fake.published())
	require.NoError(e.t, e.svc.reconcile(context.Background()))
	return e.fake.published()[before:]
}

// later moves the clock past the wait of a bucket read tries times before.
func (e *testEnv) later(tries int) {
	e.clock.add(redriveBackoff(e.svc.cfg.redriveAfter, max(tries, 1)) + time.Second)
}

// isBucket tells the key of a bucket from the others, minutes' marks included.
func isBucket(key string) bool {
	return strings.HasPrefix(key, "open-") && !strings.HasPrefix(key, minuteKey(0)[:len("open-minute-")])
}

// bucketOf returns the bucket that holds orderID, or an empty one.
func (e *testEnv) bucketOf(orderID string) bucket {
	e.t.Helper()
	for _, k := range e.fake.keys() {
		if !isBucket(k) {
			continue
		}
		v, _ := e.fake.value(k)
		var b bucket
		require.NoError(e.t, json.Unmarshal(v, &b))
		for _, id := range b.IDs {
			if id == orderID {
				return b
			}
		}
	}
	return bucket{}
}

// openKeys returns the buckets left in the store.
func (e *testEnv) openKeys() []string {
	var out []string
	for _, k := range e.fake.keys() {
		if isBucket(k) {
			out = append(out, k)
		}
	}
	return out
}

// settleAs records what the consumers say about o: notified of its final
// event, and, for a cancelled order, its reservation and charge as given.
func (e *testEnv) settleAs(o order, reservation, charge string) {
	typ := events.OrderConfirmed
	if o.Status == events.StatusCancelled {
		typ = events.OrderCancelled
	}
	e.fake.consumers.notified[events.EventID(o.ID, typ)] = true
	if reservation != "" {
		e.fake.consumers.reservations[o.ID] = reservation
	}
	if charge != "" {
		e.fake.consumers.charges[o.ID] = charge
	}
}

// confirm moves the placed order o to confirmed through the saga's events.
func (e *testEnv) confirm(o order) order {
	e.t.Helper()
	for _, typ := range []string{events.StockReserved, events.PaymentSucceeded} {
		path, body := outcomeEvent(e.t, typ, o.ID, "")
		require.Equal(e.t, events.StatusSuccess, e.deliver(path, body))
	}
	return e.stored(o.ID)
}

// cancelFor moves the placed order o to cancelled through the event typ.
func (e *testEnv) cancelFor(o order, typ string) order {
	e.t.Helper()
	if typ == events.PaymentFailed {
		path, body := outcomeEvent(e.t, events.StockReserved, o.ID, "")
		require.Equal(e.t, events.StatusSuccess, e.deliver(path, body))
	}
	path, body := outcomeEvent(e.t, typ, o.ID, "")
	require.Equal(e.t, events.StatusSuccess, e.deliver(path, body))
	return e.stored(o.ID)
}

func TestReconcilerPublishesAnOpenOrderAgain(t *testing.T) {
	for _, reserved := range []bool{false, true} {
		name := map[bool]string{false: "pending", true: "reserved"}[reserved]
		t.Run(name, func(t *testing.T) {
			e := newReconcilerEnv(t)
			o := e.place("k", appleAndPear)
			if reserved {
				path, body := outcomeEvent(t, events.StockReserved, o.ID, "")
				require.Equal(t, events.StatusSuccess, e.deliver(path, body))
			}
			require.Equal(t, name, e.stored(o.ID).Status)
			assert.Empty(t, e.reconcile(), "an order younger than redriveAfter is left to the saga")

			e.later(1)
			got := e.reconcile()
			require.Len(t, got, 1, "the placement is published again")
			assertAnnounced(t, got[0], o, events.OrderPlaced)
			b := e.bucketOf(o.ID)
			assert.Equal(t, 1, b.Tries, "the order stays open")

			assert.Empty(t, e.reconcile(), "not again before the bucket's wait is over")
			e.later(1)
			require.Len(t, e.reconcile(), 1)
			assert.Equal(t, 2, e.bucketOf(o.ID).Tries)
			e.later(1)
			assert.Empty(t, e.reconcile(), "the wait doubles")
			e.later(2)
			require.Len(t, e.reconcile(), 1)
			assert.Equal(t, 3, e.bucketOf(o.ID).Tries)

			e.settleAs(e.confirm(o), "", "")
			e.later(3)
			assert.Empty(t, e.reconcile(), "a confirmed, notified order needs nothing")
			assert.Empty(t, e.openKeys(), "and its bucket is gone")
		})
	}
}

func TestReconcilerLeavesSettledOrders(t *testing.T) {
	e := newReconcilerEnv(t)
	confirmed := e.confirm(e.place("k1", appleAndPear))
	rejected := e.cancelFor(e.place("k2", appleAndPear), events.StockRejected)
	declined := e.cancelFor(e.place("k3", appleAndPear), events.PaymentFailed)
	e.settleAs(confirmed, "", "")
	e.settleAs(rejected, "rejected", "cancelled")
	e.settleAs(declined, "released", "failed")

	e.later(1)
	assert.Empty(t, e.reconcile())
	assert.Empty(t, e.openKeys())
	var st reconcilerState
	v, ok := e.fake.value(reconcilerKey)
	require.True(t, ok)
	require.NoError(t, json.Unmarshal(v, &st))
	assert.Empty(t, st.Due, "no second is left to read again")
	assert.Empty(t, e.reconcile(), "a later pass finds nothing either")
}

func TestReconcilerAnnouncesWhatAConsumerMissed(t *testing.T) {
	tests := []struct {
		name                string
		confirmed           bool
		notified            bool
		reservation, charge string
	}{
		{"confirmation not notified", true, false, "", ""},
		{"cancellation not notified", false, false, "released", "cancelled"},
		{"reservation still held", false, true, "reserved", "cancelled"},
		{"reservation unknown", false, true, "", "cancelled"},
		{"charge still standing", false, true, "released", "succeeded"},
		{"charge unknown", false, true, "released", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newReconcilerEnv(t)
			var o order
			typ := events.OrderConfirmed
			if tt.confirmed {
				o = e.confirm(e.place("k", appleAndPear))
			} else {
				o = e.cancelFor(e.place("k", appleAndPear), events.PaymentFailed)
				typ = events.OrderCancelled
			}
			e.fake.consumers.notified[events.EventID(o.ID, typ)] = tt.notified
			if tt.reservation != "" {
				e.fake.consumers.reservations[o.ID] = tt.reservation
			}
			if tt.charge != "" {
				e.fake.consumers.charges[o.ID] = tt.charge
			}

			e.later(1)
			got := e.reconcile()
			require.Len(t, got, 1)
			assertAnnounced(t, got[0], o, typ)
			assert.Equal(t, 1, e.bucketOf(o.ID).Tries, "the order stays open")

			e.settleAs(o, "released", "refunded")
			e.later(1)
			assert.Empty(t, e.reconcile())
			assert.Empty(t, e.openKeys())
		})
	}
}

func TestReconcilerCancelsAnOrderPastTheSagaTimeout(t *testing.T) {
	e := newReconcilerEnv(t)
	o := e.place("k", appleAndPear)
	var got []daprfake.Event
	for tries := 1; len(got) == 0 || got[0].Type() == events.OrderPlaced; tries++ {
		require.Less(t, tries, 20)
		e.later(tries)
		got = e.reconcile()
		if age := e.clock.now().Sub(o.CreatedAt); age < e.svc.cfg.sagaTimeout {
			require.Len(t, got, 1)
			require.Equal(t, events.OrderPlaced, got[0].Type(), "only the placement, while the order is %s old", age)
		}
	}
	require.Len(t, got, 1)
	cancelled := e.stored(o.ID)
	assert.Equal(t, events.StatusCancelled, cancelled.Status)
	assert.Equal(t, events.ReasonTimedOut, cancelled.Reason)
	assert.Equal(t, []string{events.StatusPending, events.StatusCancelled}, statuses(cancelled))
	assertAnnounced(t, got[0], cancelled, events.OrderCancelled)

	e.settleAs(cancelled, "cancelled", "cancelled")
	e.later(20)
	assert.Empty(t, e.reconcile(), "its cancellation reached every consumer")
	assert.Empty(t, e.openKeys())
}

// state reads where the reconciler stands.
func (e *testEnv) state() reconcilerState {
	e.t.Helper()
	v, ok := e.fake.value(reconcilerKey)
	require.True(e.t, ok)
	var st reconcilerState
	require.NoError(e.t, json.Unmarshal(v, &st))
	return st
}

func TestReconcilerReadsAWaitingSecondOnlyWhenDue(t *testing.T) {
	e := newReconcilerEnv(t)
	o := e.place("k", appleAndPear)
	e.later(1)
	require.Len(t, e.reconcile(), 1)
	st := e.state()
	require.Len(t, st.Due, 1, "its second waits")
	assert.Equal(t, o.CreatedAt.Unix(), st.Due[0].Second)
	assert.Equal(t, e.clock.now().Add(e.svc.cfg.redriveAfter), st.Due[0].Next)

	var readOpen int
	e.fake.fail = func(method, key string) error {
		if method == "GetBulkState" && strings.HasPrefix(key, fmt.Sprintf("open-%d-", st.Due[0].Second)) {
			readOpen++
		}
		return nil
	}
	e.clock.add(time.Second)
	assert.Empty(t, e.reconcile())
	assert.Zero(t, readOpen, "a second not due yet is not read")
	e.later(1)
	require.Len(t, e.reconcile(), 1, "and read once it is")
	assert.Equal(t, openShards, readOpen)
}

func TestReconcilerReadsTheStateOfBeforeDue(t *testing.T) {
	e := newReconcilerEnv(t)
	o := e.place("k", appleAndPear)
	e.later(1)
	// A state written before seconds had due times names them in open.
	sec := o.CreatedAt.Unix()
	e.fake.set(t, reconcilerKey, map[string]any{"swept": sec, "open": []int64{sec}})
	got := e.reconcile()
	require.Len(t, got, 1, "the second named in open is read")
	assertAnnounced(t, got[0], o, events.OrderPlaced)
	assert.Equal(t, sec, e.state().Due[0].Second)
	assert.Empty(t, e.state().Open, "and written back as due")
}

func TestReconcilerAsksInBatches(t *testing.T) {
	e := newReconcilerEnv(t)
	const n = lookupBatch + lookupBatch/2
	for i := range n {
		o := e.confirm(e.place(fmt.Sprintf("k%d", i), appleAndPear))
		if i != n-1 {
			e.settleAs(o, "", "")
		}
	}
	e.later(1)
	before := len(e.fake.calls())
	got := e.reconcile()
	var asked []int
	for _, c := range e.fake.calls()[before:] {
		_, ids, ok := strings.Cut(c, "orderIds=")
		require.True(t, ok, c)
		asked = append(asked, len(strings.Split(ids, ",")))
	}
	assert.Equal(t, []int{lookupBatch, n - lookupBatch}, asked, "notifications asked once per batch")
	require.Len(t, got, 1, "the one order not notified is announced again")
	assert.Len(t, e.openKeys(), 1, "only its bucket is left")
}

func TestReconcilerDropsAnOrderNeverSaved(t *testing.T) {
	e := newReconcilerEnv(t)
	e.fake.fail = failOn("ExecuteStateTransaction", "order-")
	rec := e.post("k", appleAndPear)
	require.Equal(t, 500, rec.Code)
	e.fake.fail = nil
	require.Len(t, e.openKeys(), 1, "the id went to its bucket before the order failed to save")

	e.later(1)
	assert.Empty(t, e.reconcile())
	assert.Empty(t, e.openKeys())
}

func TestReconcilerCatchesUpInSteps(t *testing.T) {
	e := newReconcilerEnv(t)
	// No pass for 90 s, less than skipAfter: a pass reads at most maxCatchUp
	// (60) new seconds, so the order is found by the second pass.
	e.clock.add(90 * time.Second)
	o := e.place("k", appleAndPear)
	e.later(1)
	passes := 0
	for ; passes < 10 && e.bucketOf(o.ID).Tries == 0; passes++ {
		e.reconcile()
	}
	assert.Equal(t, 2, passes)
	assert.Equal(t, 1, e.bucketOf(o.ID).Tries)
}

func TestReconcilerStoreFailures(t *testing.T) {
	tests := []struct {
		name    string
		fail    func(string, string) error
		wantErr string
	}{
		{"where it stands cannot be read", failOn("GetState", reconcilerKey), "read reconciler"},
		{"buckets cannot be read", failOn("GetBulkState", "open-"), "read open orders"},
		{"orders cannot be read", failOn("GetBulkState", "order-"), "connection refused"},
		{"where it stands cannot be saved", failOn("SaveState", reconcilerKey), "record where the reconciler stands"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newReconcilerEnv(t)
			o := e.place("k", appleAndPear)
			e.later(1)
			e.fake.fail = tt.fail
			assert.ErrorContains(t, e.svc.reconcile(context.Background()), tt.wantErr)
			e.fake.fail = nil

			got := e.reconcile()
			if tt.name != "where it stands cannot be saved" {
				// Nothing was published, and the next pass does it all.
				require.Len(t, got, 1)
			}
			assertAnnounced(t, e.fake.published()[len(e.fake.published())-1], o, events.OrderPlaced)
		})
	}
}

func TestReconcilerKeepsWhatItCouldNotFinish(t *testing.T) {
	tests := []struct {
		name string
		fail func(string, string) error
	}{
		{"a consumer cannot be asked", failOn("InvokeMethod", "notified")},
		{"the announcement cannot be published", failOn("PublishEvent", events.TopicOrderConfirmed)},
		{"the bucket cannot be deleted", failOn("DeleteBulkStateItems", "open-")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newReconcilerEnv(t)
			o := e.confirm(e.place("k", appleAndPear))
			if tt.name == "the bucket cannot be deleted" {
				e.settleAs(o, "", "")
			}
			e.later(1)
			e.fake.fail = tt.fail
			require.NoError(t, e.svc.reconcile(context.Background()), "a pass goes on past what fails")
			e.fake.fail = nil
			require.NotEmpty(t, e.openKeys(), "the order is still open")

			e.settleAs(o, "", "")
			e.later(1)
			assert.Empty(t, e.reconcile())
			assert.Empty(t, e.openKeys(), "the next pass finishes it")
		})
	}
}

func TestPlacementsMarkTheirMinuteOnce(t *testing.T) {
	e := newReconcilerEnv(t)
	marks := func() int {
		e.fake.mu.Lock()
		defer e.fake.mu.Unlock()
		n := 0
		for _, k := range e.fake.saves {
			if strings.HasPrefix(k, "open-minute-") {
				n++
			}
		}
		return n
	}
	e.clock.add(time.Minute - time.Duration(e.clock.t.Second())*time.Second)
	e.place("k1", appleAndPear)
	e.place("k2", appleAndPear)
	e.place("k3", appleAndPear)
	assert.Equal(t, 1, marks(), "one mark for three placements in a minute")
	e.clock.add(time.Minute)
	e.place("k4", appleAndPear)
	assert.Equal(t, 2, marks(), "and one more in the next minute")
}

func TestReconcilerSkipsMinutesWithoutOrders(t *testing.T) {
	e := newReconcilerEnv(t)
	// A day without a pass, then an order: a pass reads the marks of up to a
	// day of minutes and goes to the first marked one, where reading every
	// second's buckets, maxCatchUp at a time, would take thousands of passes.
	e.clock.add(24 * time.Hour)
	o := e.place("k", appleAndPear)
	e.later(1)
	passes := 0
	for ; passes < 5 && len(e.fake.published()) == 0; passes++ {
		e.reconcile()
	}
	assert.LessOrEqual(t, passes, 3)
	require.Len(t, e.fake.published(), 1, "the order is found")
	assertAnnounced(t, e.fake.published()[0], o, events.OrderPlaced)

	e.settleAs(e.confirm(o), "", "")
	e.clock.add(2 * time.Minute)
	for range 3 {
		e.reconcile()
	}
	assert.Empty(t, e.openKeys())
	for _, k := range e.fake.keys() {
		assert.False(t, strings.HasPrefix(k, "open-minute-"), "the mark of a minute read goes: %s", k)
	}
}

func TestRedriveBackoff(t *testing.T) {
	first := 10 * time.Second
	assert.Equal(t, first, redriveBackoff(first, 1))
	assert.Equal(t, 2*first, redriveBackoff(first, 2))
	assert.Equal(t, 16*first, redriveBackoff(first, 5))
	assert.Equal(t, maxRedriveBackoff, redriveBackoff(first, 6))
	assert.Equal(t, maxRedriveBackoff, redriveBackoff(first, 1000))
}

// second starts another instance, named name, on e's store and clock.
func (e *testEnv) second(name string) *testEnv {
	e.t.Helper()
	b := newInstanceWith(e.t, e.fake, testConfig())
	b.svc.instance, b.svc.now, b.clock = name, e.svc.now, e.clock
	return b
}

// pass makes one pass as reconcileEvery does, lease first, which must not
// fail, and returns the events it published.
func (e *testEnv) pass() []daprfake.Event {
	e.t.Helper()
	before := len(e.fake.published())
	require.NoError(e.t, e.svc.pass(context.Background(), e.svc.cfg.reconcileInterval))
	return e.fake.published()[before:]
}

// lease returns the reconciler's lease as stored, and whether there is one.
func (e *testEnv) lease() (lease, bool) {
	e.t.Helper()
	v, ok := e.fake.value(leaseKey)
	var l lease
	if ok {
		require.NoError(e.t, json.Unmarshal(v, &l))
	}
	return l, ok
}

func TestReconcilerRunsInOneInstanceAtATime(t *testing.T) {
	a := newReconcilerEnv(t)
	b := a.second("orders-b")
	leaseFor := leasePasses * a.svc.cfg.reconcileInterval // 10 s
	o := a.place("k", appleAndPear)

	a.clock.add(a.svc.cfg.redriveAfter + time.Second)
	got := a.pass()
	require.Len(t, got, 1, "the first instance to pass takes the lease and publishes the placement again")
	assertAnnounced(t, got[0], o, events.OrderPlaced)
	l, _ := a.lease()
	assert.Equal(t, lease{Holder: "orders-test", Until: a.svc.now().Add(leaseFor)}, l)

	// The holder renews the lease every pass; the other instance only reads it,
	// even once the bucket is due again.
	a.clock.add(leaseFor / 2)
	assert.Empty(t, a.pass())
	a.clock.add(leaseFor / 2)
	reads := a.fake.reads()
	assert.Empty(t, b.pass(), "the other instance waits while the lease holds")
	assert.Equal(t, reads+1, a.fake.reads(), "and reads the lease alone")
	require.Len(t, a.pass(), 1, "the holder publishes what is due")

	// The holder dies: once its lease has run out, the other takes over.
	a.clock.add(leaseFor + time.Second)
	assert.Empty(t, b.pass(), "the bucket is not due yet")
	l, _ = a.lease()
	assert.Equal(t, "orders-b", l.Holder, "the lease is the other's")
	a.clock.add(redriveBackoff(a.svc.cfg.redriveAfter, 2))
	got = b.pass()
	require.Len(t, got, 1, "the new holder publishes what is due")
	assertAnnounced(t, got[0], o, events.OrderPlaced)
	assert.Empty(t, a.pass(), "and the first, back, waits in turn")
	l, _ = a.lease()
	assert.Equal(t, "orders-b", l.Holder)

	reads = a.fake.reads()
	require.NoError(t, a.svc.releaseLease(context.Background()))
	assert.Equal(t, reads, a.fake.reads(), "an instance that stops without the lease does not even read it")
	l, _ = a.lease()
	assert.Equal(t, "orders-b", l.Holder)
}

func TestReconcilerGivesTheLeaseBackWhenItStops(t *testing.T) {
	a := newReconcilerEnv(t)
	b := a.second("orders-b")
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.svc.reconcileEvery(ctx, time.Millisecond)
	}()
	require.Eventually(t, func() bool { l, _ := a.lease(); return l.Holder == "orders-test" }, 5*time.Second, time.Millisecond)
	stop()
	<-done
	_, held := a.lease()
	assert.False(t, held, "the lease is given back")

	o := b.place("k", appleAndPear)
	b.clock.add(b.svc.cfg.redriveAfter + time.Second)
	got := b.pass()
	require.Len(t, got, 1, "another instance takes over at once")
	assertAnnounced(t, got[0], o, events.OrderPlaced)
}

func TestReconcilerLeaseFailures(t *testing.T) {
	tests := []struct {
		name    string
		fail    func(*fakeSidecar) func(string, string) error
		wantErr string // "" when the pass succeeds
		holds   bool   // whether the instance makes the pass
	}{
		{name: "the lease cannot be read", wantErr: "read reconciler-lease",
			fail: func(*fakeSidecar) func(string, string) error { return failOn("GetState", leaseKey) }},
		{name: "the lease cannot be saved", wantErr: "save reconciler-lease",
			fail: func(*fakeSidecar) func(string, string) error { return failOn("SaveState", leaseKey) }},
		{name: "another instance takes the lease first", fail: func(f *fakeSidecar) func(string, string) error {
			return func(method, key string) error {
				if method == "SaveState" && key == leaseKey {
					f.fail = nil
					f.setBytes(leaseKey, []byte(`{"holder":"orders-c","until":"2100-01-01T00:00:00Z"}`))
					return errors.New("etag mismatch")
				}
				return nil
			}
		}},
		{name: "a corrupt lease is taken over", holds: true, fail: func(f *fakeSidecar) func(string, string) error {
			f.setBytes(leaseKey, []byte("{"))
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newReconcilerEnv(t)
			o := e.place("k", appleAndPear)
			e.later(1)
			e.fake.fail = tt.fail(e.fake)
			before := len(e.fake.published())
			err := e.svc.pass(context.Background(), e.svc.cfg.reconcileInterval)
			e.fake.fail = nil
			got := e.fake.published()[before:]
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
			if !tt.holds {
				assert.Empty(t, got, "no pass without the lease")
				return
			}
			require.Len(t, got, 1)
			assertAnnounced(t, got[0], o, events.OrderPlaced)
			l, _ := e.lease()
			assert.Equal(t, "orders-test", l.Holder)
		})
	}
}

func TestReconcilerGivesTheLeaseBackWhenAPassFails(t *testing.T) {
	a := newReconcilerEnv(t)
	b := a.second("orders-b")
	o := a.place("k", appleAndPear)
	a.later(1)
	a.fake.fail = failOn("GetBulkState", "open-")
	assert.ErrorContains(t, a.svc.pass(context.Background(), a.svc.cfg.reconcileInterval), "read open orders")
	a.fake.fail = nil
	_, held := a.lease()
	assert.False(t, held, "a failed pass gives the lease back")

	got := b.pass()
	require.Len(t, got, 1, "so that another instance makes the next pass at once")
	assertAnnounced(t, got[0], o, events.OrderPlaced)
	l, _ := a.lease()
	assert.Equal(t, "orders-b", l.Holder)
}
