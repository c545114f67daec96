package main

// The reconciler: no order stays open because the broker lost an event.
//
// The saga moves an order on by events, and a broker can lose one: the MQTT set
// loses what is published while a subscriber's sidecar is away, and a Redis
// that keeps nothing on disk loses its streams when it restarts. Every consumer
// is idempotent and answers a duplicate by announcing its recorded outcome
// again, so an event published again resumes the saga where it stopped. What
// orders needs is to know which orders may still need one.
//
// So each order's id is added, just before the order is saved, to a bucket of
// the second it is placed in (openKey), one of openShards per second so that
// concurrent placements seldom contend for a key. The reconciler reads each
// bucket once it is cfg.redriveAfter old and learns, from the consumers first
// (see settleBatch), what its orders still need:
//
//   - pending or reserved: the order's OrderPlaced is published again, which
//     the inventory answers with its outcome, and payments, given a
//     reservation, with its own. Past cfg.sagaTimeout the order is cancelled
//     (timed_out) instead: a consumer gone for that long is not waited for.
//   - confirmed, and notifications did not tell the customer: OrderConfirmed
//     is published again.
//   - cancelled, and notifications did not tell the customer, or the
//     inventory still holds a reservation, or payments a charge: OrderCancelled
//     is published again.
//
// An order that needs nothing more leaves its bucket, and an emptied bucket is
// deleted; a bucket with orders left is read again later, each time twice as
// late, up to maxRedriveBackoff. Where the reconciler stands is one key
// (reconcilerKey): the newest second whose buckets it has read, and the older
// seconds whose buckets still hold orders.
//
// A reconciler that starts far behind, after the shop was down for a day say,
// would spend hours reading the empty buckets of that day before it reached
// the orders placed now. So each instance also marks, once a minute, the
// minute it adds orders to buckets in (minuteKey), and a reconciler more than
// skipAfter behind reads the marks and goes straight to the first marked
// minute. A mark goes when the reconciler has read its minute.
//
// One instance at a time makes the passes: the holder of a lease (leaseKey),
// which it renews every pass. The other instances read the lease each interval
// and wait. When the holder stops, or a pass of its fails, it gives the lease
// back and another takes over at its next interval; when it dies, another
// takes over once the lease has run out (leasePasses intervals). The lease is
// timed by the clock of the instance that reads it, so the instances' clocks
// must agree to well within that. Two instances that both make passes (one's
// pass outlasted its lease) publish the same events twice, which the consumers
// recognise as duplicates, and one of them fails to record where it stands.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dapr/go-sdk/client"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/statestore"
)

const (
	// openShards is how many buckets a second of placements is spread over.
	openShards = 4
	// reconcilerKey holds where the reconciler stands, and leaseKey which
	// instance makes the passes.
	reconcilerKey = "reconciler"
	leaseKey      = "reconciler-lease"
	// leasePasses is how many intervals a lease lasts unless renewed.
	leasePasses = 5
	// releaseTimeout bounds giving the lease back when the reconciler stops.
	releaseTimeout = 2 * time.Second
	// maxRedriveBackoff bounds the wait between two reads of a bucket whose
	// orders are still open.
	maxRedriveBackoff = 5 * time.Minute
	// maxCatchUp bounds the seconds of new buckets a pass reads, so that a
	// reconciler behind catches up in steps of a bounded cost.
	maxCatchUp = 60
	// lookupBatch is how many order ids one question to a consumer names: the
	// consumers' limit.
	lookupBatch = 100
	// lookupTimeout bounds one question to a consumer.
	lookupTimeout = 5 * time.Second
	// storeBatch is how many keys one bulk read of the reconciler names.
	storeBatch = 100
	// skipAfter is how far behind the reconciler reads the minutes' marks to
	// skip those without orders, and maxSkip how many minutes' marks a pass
	// reads at most: a day.
	skipAfter = 2 * time.Minute
	maxSkip   = 24 * 60
)

// openKey is the key of a bucket of open orders: shard of second (Unix time).
func openKey(second int64, shard int) string { return fmt.Sprintf("open-%d-%d", second, shard) }

// minuteKey is the key of the mark of a minute (Unix time / 60) in which
// orders were added to buckets.
func minuteKey(minute int64) string { return fmt.Sprintf("open-minute-%d", minute) }

// shardOf spreads order ids over the shards.
func shardOf(orderID string) int { return int(crc32.ChecksumIEEE([]byte(orderID)) % openShards) }

// bucket holds the ids of orders that may still need an event, placed in one
// second. Tries counts the passes that found orders left in it, and Next is
// when a pass may read it again.
type bucket struct {
	IDs   []string  `json:"ids"`
	Tries int       `json:"tries,omitempty"`
	Next  time.Time `json:"next,omitzero"`
}

// reconcilerState is where the reconciler stands: it has read the buckets of
// every second up to Swept, and those of the seconds in Due still hold orders,
// to be read again from Next on. Open is what Due was before it had times:
// seconds to read at once (a state written then is still read).
type reconcilerState struct {
	Swept int64       `json:"swept"`
	Due   []dueSecond `json:"due,omitempty"`
	Open  []int64     `json:"open,omitempty"`
}

// dueSecond is a second whose buckets still hold orders, and when the first of
// them is due to be read again.
type dueSecond struct {
	Second int64     `json:"s"`
	Next   time.Time `json:"next"`
}

// addToOpen adds orderID to the bucket of the second at. A placement calls it
// before it saves the order, so that a saved order is always in a bucket; an id
// whose order was never saved is dropped by the reconciler.
//
// The bucket is read under its lock, not with the placement's first read: a
// second's bucket takes every placement of that second on its shard, so by the
// time a placement wrote it, another had often changed it since that read, and
// the conflicts, each paid for with a pause under the lock, held up the
// placements queued behind it (bench/README.md, tuning log 21).
func (s *orders) addToOpen(ctx context.Context, orderID string, at time.Time) error {
	key := openKey(at.Unix(), shardOf(orderID))
	unlock := s.buckets.Lock(key)
	defer unlock()
	err := statestore.UpdateJSON(ctx, s.dapr, s.cfg.Store, key, func(b *bucket, _ bool) (bool, error) {
		if slices.Contains(b.IDs, orderID) {
			return false, nil
		}
		b.IDs = append(b.IDs, orderID)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("add order %s to %s: %w", orderID, key, err)
	}
	return nil
}

// markMinute marks the minute of at as one with orders in buckets, once per
// minute and instance. A placement calls it before it adds its order to a
// bucket, so that a bucket's minute is always marked.
func (s *orders) markMinute(ctx context.Context, at time.Time) error {
	minute := at.Unix() / 60
	if s.marked.Load() == minute {
		return nil
	}
	if err := s.dapr.SaveState(ctx, s.cfg.Store, minuteKey(minute), []byte("true"), nil); err != nil {
		return fmt.Errorf("mark minute %d: %w", minute, err)
	}
	s.marked.Store(minute)
	return nil
}

// reconcileEvery runs a reconciler pass every interval, while this instance
// holds the lease, until ctx is done, and then gives the lease back. A pass
// that fails is logged and the next one starts where it did.
func (s *orders) reconcileEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := s.releaseLease(rctx); err != nil {
			s.log.WarnContext(rctx, "could not give the reconciler's lease back; another instance takes over when it runs out", "err", err)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.pass(ctx, interval); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "reconciler pass failed; the next one tries again", "err", err)
		}
	}
}

// pass makes a reconciler pass if this instance holds the lease, renewed for
// leasePasses intervals. A pass that fails gives the lease back, so that
// another instance, whose sidecar may reach what this one's does not, can
// make the next.
func (s *orders) pass(ctx context.Context, interval time.Duration) error {
	held, err := s.holdLease(ctx, leasePasses*interval)
	if err != nil || !held {
		return err
	}
	if err := s.reconcile(ctx); err != nil {
		if rerr := s.releaseLease(ctx); rerr != nil {
			return errors.Join(err, fmt.Errorf("give the lease back: %w", rerr))
		}
		return err
	}
	return nil
}

// lease says which instance makes the reconciler's passes, until when.
type lease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// holdLease tells whether this instance holds the lease, which it takes or
// renews for d when it is its own, free or run out. A lease that another
// instance took since it was read is that one's.
func (s *orders) holdLease(ctx context.Context, d time.Duration) (bool, error) {
	now := s.now().UTC()
	cur, etag, err := s.readLease(ctx)
	if err != nil {
		return false, err
	}
	if cur.Holder != s.instance && now.Before(cur.Until) {
		s.leased.Store(false)
		return false, nil
	}
	value, err := json.Marshal(lease{Holder: s.instance, Until: now.Add(d)})
	if err != nil {
		return false, fmt.Errorf("encode %s: %w", leaseKey, err)
	}
	if err := statestore.Save(ctx, s.dapr, s.cfg.Store, leaseKey, value, etag); err != nil {
		if errors.Is(err, statestore.ErrConflict) {
			s.leased.Store(false)
			return false, nil
		}
		return false, err
	}
	s.leased.Store(true)
	if cur.Holder != s.instance {
		s.log.InfoContext(ctx, "this instance makes the reconciler's passes now", "instance", s.instance,
			"before", cur.Holder)
	}
	return true, nil
}

// readLease reads the lease and its ETag. A lease that cannot be decoded reads
// as a free one, to be taken over.
func (s *orders) readLease(ctx context.Context) (lease, string, error) {
	item, err := s.dapr.GetState(ctx, s.cfg.Store, leaseKey, nil)
	if err != nil {
		return lease{}, "", fmt.Errorf("read %s: %w", leaseKey, err)
	}
	var l lease
	if len(item.Value) > 0 {
		if err := json.Unmarshal(item.Value, &l); err != nil {
			s.log.WarnContext(ctx, "the reconciler's lease is corrupt; taking it over", "err", err)
			l = lease{}
		}
	}
	return l, item.Etag, nil
}

// releaseLease gives the lease back when this instance holds it, so that
// another instance takes over at once rather than when it runs out.
func (s *orders) releaseLease(ctx context.Context) error {
	if !s.leased.Load() {
		return nil
	}
	cur, etag, err := s.readLease(ctx)
	if err != nil || cur.Holder != s.instance {
		return err
	}
	return s.dapr.DeleteBulkStateItems(ctx, s.cfg.Store, []*client.DeleteStateItem{deleteUnchanged(leaseKey, etag)})
}

// deleteUnchanged deletes key only if it still has the ETag etag.
func deleteUnchanged(key, etag string) *client.DeleteStateItem {
	return &client.DeleteStateItem{Key: key, Etag: &client.ETag{Value: etag},
		Options: &client.StateOptions{Concurrency: client.StateConcurrencyFirstWrite}}
}

// readBucket is a bucket as a pass read it: with its key, its second and
// its ETag.
type readBucket struct {
	bucket
	key    string
	second int64
	etag   string
}

// reconcile makes one pass: it reads the buckets due, publishes again what
// their orders still need, and records what is left.
func (s *orders) reconcile(ctx context.Context) error {
	now := s.now().UTC()
	horizon := now.Add(-s.cfg.redriveAfter).Unix()
	item, err := s.dapr.GetState(ctx, s.cfg.Store, reconcilerKey, nil)
	if err != nil {
		return fmt.Errorf("read %s: %w", reconcilerKey, err)
	}
	var st reconcilerState
	etag := item.Etag
	if len(item.Value) == 0 {
		// The first pass ever: orders placed before the reconciler existed are
		// not in any bucket, so it starts from now.
		st.Swept, etag = horizon, ""
	} else if err := json.Unmarshal(item.Value, &st); err != nil {
		return fmt.Errorf("decode %s: %w", reconcilerKey, errors.Join(errCorrupt, err))
	}

	from := st.Swept + 1
	if time.Duration(horizon-from)*time.Second >= skipAfter {
		if from, err = s.skipUnmarked(ctx, from, horizon); err != nil {
			return err
		}
	}
	// Seconds still waiting keep their place without a read: an outage can
	// leave minutes of them, each waiting up to maxRedriveBackoff.
	open := map[int64]time.Time{}
	var seconds []int64
	for _, d := range st.Due {
		if d.Next.After(now) {
			open[d.Second] = d.Next
		} else {
			seconds = append(seconds, d.Second)
		}
	}
	seconds = append(seconds, st.Open...)
	swept := from - 1
	for sec := from; sec <= horizon && sec < from+maxCatchUp; sec++ {
		seconds = append(seconds, sec)
		swept = sec
	}
	buckets, err := s.readBuckets(ctx, seconds)
	if err != nil {
		return err
	}

	// keep records that the second sec still holds orders, due at next.
	keep := func(sec int64, next time.Time) {
		if at, ok := open[sec]; !ok || next.Before(at) {
			open[sec] = next
		}
	}
	var due []readBucket
	var ids []string
	for _, b := range buckets {
		if b.Next.After(now) {
			keep(b.second, b.Next)
			continue
		}
		due = append(due, b)
		ids = append(ids, b.IDs...)
	}
	slices.Sort(ids)
	left, err := s.settle(ctx, slices.Compact(ids), now)
	if err != nil {
		return err
	}

	var gone []*client.DeleteStateItem
	for _, b := range due {
		rest := slices.DeleteFunc(slices.Clone(b.IDs), func(id string) bool { return !left[id] })
		if len(rest) == 0 {
			gone = append(gone, deleteUnchanged(b.key, b.etag))
			continue
		}
		next := bucket{IDs: rest, Tries: b.Tries + 1, Next: now.Add(redriveBackoff(s.cfg.redriveAfter, b.Tries+1))}
		if err := s.saveJSON(ctx, b.key, next, b.etag); err != nil {
			// The bucket is read again as it was, in the next pass.
			s.log.WarnContext(ctx, "could not record the orders left in a bucket", "key", b.key, "err", err)
			next.Next = now
		}
		keep(b.second, next.Next)
	}
	if len(gone) > 0 {
		if err := s.dapr.DeleteBulkStateItems(ctx, s.cfg.Store, gone); err != nil {
			// Each bucket still there is read again, and found empty, next time.
			s.log.WarnContext(ctx, "could not delete emptied buckets", "count", len(gone), "err", err)
			for _, b := range due {
				keep(b.second, now)
			}
		}
	}

	next := reconcilerState{Swept: swept, Due: dueSeconds(open)}
	if err := s.saveJSON(ctx, reconcilerKey, next, etag); err != nil {
		return fmt.Errorf("record where the reconciler stands: %w", err)
	}
	// The marks of the minutes read to their end go; the minutes skipped had
	// none.
	var marks []*client.DeleteStateItem
	for m := from / 60; (m+1)*60-1 <= swept; m++ {
		marks = append(marks, &client.DeleteStateItem{Key: minuteKey(m)})
	}
	if err := s.dapr.DeleteBulkStateItems(ctx, s.cfg.Store, marks); err != nil {
		// A mark left behind only makes a reconciler far behind read a minute
		// it could have skipped.
		s.log.WarnContext(ctx, "could not delete the marks of minutes read", "count", len(marks), "err", err)
	}
	return nil
}

// skipUnmarked returns the first second, from from on, of a minute that is
// marked, reading the marks of at most maxSkip minutes; when none of them is
// marked, it returns the second after the last minute read, or after horizon
// when that comes first: orders may still be placed in horizon's minute.
func (s *orders) skipUnmarked(ctx context.Context, from, horizon int64) (int64, error) {
	first, last := from/60, min(horizon/60, from/60+maxSkip-1)
	minutes := make([]int64, 0, last-first+1)
	for m := first; m <= last; m++ {
		minutes = append(minutes, m)
	}
	for _, chunk := range chunks(minutes, storeBatch) {
		keys := make([]string, len(chunk))
		for i, m := range chunk {
			keys[i] = minuteKey(m)
		}
		read, err := statestore.GetBulk(ctx, s.dapr, s.cfg.Store, keys...)
		if err != nil {
			return 0, fmt.Errorf("read the marks of minutes: %w", err)
		}
		for i, m := range chunk {
			if len(read[keys[i]].Value) > 0 {
				return max(from, m*60), nil
			}
		}
	}
	return min((last+1)*60, horizon+1), nil
}

// readBuckets reads every shard's bucket of seconds, and returns those that
// exist.
func (s *orders) readBuckets(ctx context.Context, seconds []int64) ([]readBucket, error) {
	var all []readBucket
	for _, sec := range seconds {
		for shard := range openShards {
			all = append(all, readBucket{key: openKey(sec, shard), second: sec})
		}
	}
	var out []readBucket
	for _, chunk := range chunks(all, storeBatch) {
		keys := make([]string, len(chunk))
		for i, b := range chunk {
			keys[i] = b.key
		}
		read, err := statestore.GetBulk(ctx, s.dapr, s.cfg.Store, keys...)
		if err != nil {
			return nil, fmt.Errorf("read open orders: %w", err)
		}
		for _, b := range chunk {
			r := read[b.key]
			if len(r.Value) == 0 {
				continue
			}
			if err := json.Unmarshal(r.Value, &b.bucket); err != nil {
				return nil, fmt.Errorf("decode %s: %w", b.key, errors.Join(errCorrupt, err))
			}
			b.etag = r.ETag
			out = append(out, b)
		}
	}
	return out, nil
}

// settle looks at the orders ids, placed at least cfg.redriveAfter ago,
// publishes again what each still needs, and returns those that may need more.
// A publish that fails leaves its order open for the next read of its bucket.
//
// It takes the orders lookupBatch at a time, with a pause between batches, so
// that a pass spreads its reads over about half the interval rather than
// loading the sidecar, which placements share, all at once.
func (s *orders) settle(ctx context.Context, ids []string, now time.Time) (map[string]bool, error) {
	left := map[string]bool{}
	batches := chunks(ids, lookupBatch)
	pause := s.cfg.reconcileInterval / time.Duration(2*len(batches)+1)
	for i, batch := range batches {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(pause):
			}
		}
		if err := s.settleBatch(ctx, batch, now, left); err != nil {
			return nil, err
		}
	}
	return left, nil
}

// settleBatch is settle for at most lookupBatch orders, adding to left those
// that may need more.
//
// Most orders are long final and every consumer has processed them, so
// notifications is asked first, about all: an order whose confirmation it
// notified needs nothing, and neither does one whose cancellation it notified,
// once the inventory and payments say the cancellation reached them too. Only
// the rest are read: those still open, whose OrderPlaced is published again,
// and the final ones a consumer missed, whose final event is.
func (s *orders) settleBatch(ctx context.Context, ids []string, now time.Time, left map[string]bool) error {
	told, err := lookup[notified](ctx, s, s.cfg.notificationsAppID, "notified", ids)
	if err != nil {
		s.log.WarnContext(ctx, "could not ask notifications about orders; asking again later", "count", len(ids), "err", err)
		for _, id := range ids {
			left[id] = true
		}
		return nil
	}
	notifiedAs := make(map[string]string, len(told))
	for _, n := range told {
		notifiedAs[n.OrderID] = n.Type
	}
	var unknown, cancelled []string
	for _, id := range ids {
		switch notifiedAs[id] {
		case events.OrderConfirmed:
		case events.OrderCancelled:
			cancelled = append(cancelled, id)
		default:
			unknown = append(unknown, id)
		}
	}
	missed, err := s.compensationMissed(ctx, cancelled)
	if err != nil {
		s.log.WarnContext(ctx, "could not ask the inventory and payments about cancelled orders; asking again later", "count", len(cancelled), "err", err)
		for _, id := range cancelled {
			left[id] = true
		}
		missed = nil
	}
	toRead := append(unknown, missed...)
	found, err := s.readOrderMap(ctx, toRead)
	if err != nil {
		return err
	}
	for _, id := range toRead {
		o, ok := found[id]
		if !ok {
			// Never saved: the placement failed, and a retry that saves the
			// order adds it to a bucket again.
			continue
		}
		left[id] = true
		s.resume(ctx, o, now)
	}
	return nil
}

// resume publishes again what the order o needs next: its OrderPlaced while it
// is open (or, past the saga's timeout, its cancellation), its final event once
// it is final.
func (s *orders) resume(ctx context.Context, o order, now time.Time) {
	if !o.terminal() {
		if now.Sub(o.CreatedAt) >= s.cfg.sagaTimeout {
			if _, err := s.apply(ctx, o.ID, "", timedOut, ""); err != nil {
				s.log.WarnContext(ctx, "could not cancel an order past the saga's timeout", "orderId", o.ID, "err", err)
			}
			return
		}
		s.log.InfoContext(ctx, "order still open: publishing its placement again", "orderId", o.ID, "status", o.Status)
		if err := s.publish(ctx, placement(o), events.OrderPlaced); err != nil {
			s.log.WarnContext(ctx, "could not publish a placement again", "orderId", o.ID, "err", err)
		}
		return
	}
	typ := events.OrderConfirmed
	if o.Status == events.StatusCancelled {
		typ = events.OrderCancelled
	}
	s.log.InfoContext(ctx, "a consumer missed a final order: announcing it again", "orderId", o.ID, "event", typ)
	if err := s.publish(ctx, o, typ); err != nil {
		s.log.WarnContext(ctx, "could not announce a final order again", "orderId", o.ID, "err", err)
	}
}

// placement is o as its OrderPlaced event showed it.
func placement(o order) order {
	o.Status, o.Reason = events.StatusPending, ""
	return o
}

// Answers of the consumers' lookups, as far as the reconciler reads them.
type (
	notified struct {
		OrderID string `json:"orderId"`
		Type    string `json:"type"`
	}
	recorded struct {
		OrderID string `json:"orderId"`
		Status  string `json:"status"`
	}
)

// Statuses, of the inventory's reservations and payments' charges, that the
// cancellation of their order must have changed.
const (
	reservationHeld = "reserved"
	chargeStanding  = "succeeded"
)

// compensationMissed asks the inventory and payments about the cancelled
// orders and returns those whose cancellation one of them has not processed:
// the inventory still holds a reservation, or payments a charge, or either has
// no record of the order at all.
func (s *orders) compensationMissed(ctx context.Context, cancelled []string) ([]string, error) {
	if len(cancelled) == 0 {
		return nil, nil
	}
	reservations, err := lookup[recorded](ctx, s, s.cfg.inventoryAppID, "reservations", cancelled)
	if err != nil {
		return nil, err
	}
	charges, err := lookup[recorded](ctx, s, s.cfg.paymentsAppID, "charges", cancelled)
	if err != nil {
		return nil, err
	}
	released := settledBy(reservations, reservationHeld)
	refunded := settledBy(charges, chargeStanding)
	var out []string
	for _, id := range cancelled {
		if !released[id] || !refunded[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

// settledBy returns the orders whose record a cancellation has reached: one
// exists, and its status is not standing.
func settledBy(records []recorded, standing string) map[string]bool {
	out := make(map[string]bool, len(records))
	for _, r := range records {
		out[r.OrderID] = r.Status != standing
	}
	return out
}

// lookup asks the app appID about the orders ids with GET
// method?orderIds=..., in batches of lookupBatch, and returns every batch's
// answer. The ids need no escaping: they are hex.
func lookup[T any](ctx context.Context, s *orders, appID, method string, ids []string) ([]T, error) {
	var out []T
	for _, chunk := range chunks(ids, lookupBatch) {
		ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		body, err := s.dapr.InvokeMethod(ctx, appID, method+"?orderIds="+strings.Join(chunk, ","), http.MethodGet)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("ask %s about %d orders: %w", appID, len(chunk), err)
		}
		var part []T
		if err := json.Unmarshal(body, &part); err != nil {
			return nil, fmt.Errorf("decode the answer of %s to %s: %w", appID, method, err)
		}
		out = append(out, part...)
	}
	return out, nil
}

// readOrderMap reads the orders ids, in bulk, by id; an order never saved is
// absent.
func (s *orders) readOrderMap(ctx context.Context, ids []string) (map[string]order, error) {
	out := make(map[string]order, len(ids))
	for _, chunk := range chunks(ids, storeBatch) {
		keys := make([]string, len(chunk))
		for i, id := range chunk {
			keys[i] = orderKey(id)
		}
		read, err := statestore.GetBulkJSON[order](ctx, s.dapr, s.cfg.Store, keys...)
		if err != nil {
			return nil, err
		}
		for i, id := range chunk {
			if o, found := read[keys[i]]; found {
				out[id] = o
			}
		}
	}
	return out, nil
}

// saveJSON writes v under key: created only if absent when etag is empty,
// else swapped in only if the key still has that ETag.
func (s *orders) saveJSON(ctx context.Context, key string, v any, etag string) error {
	value, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if etag == "" {
		err = s.dapr.SaveState(ctx, s.cfg.Store, key, value, nil, firstWrite)
	} else {
		err = s.dapr.SaveStateWithETag(ctx, s.cfg.Store, key, value, etag, nil, firstWrite)
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", key, err)
	}
	return nil
}

// redriveBackoff is how long a bucket whose orders were still open after tries
// passes waits for the next: first, then twice as long each time, up to
// maxRedriveBackoff.
func redriveBackoff(first time.Duration, tries int) time.Duration {
	d := first
	for i := 1; i < tries && d < maxRedriveBackoff; i++ {
		d *= 2
	}
	return min(d, maxRedriveBackoff)
}

// chunks cuts s into slices of at most n elements.
func chunks[T any](s []T, n int) [][]T {
	var out [][]T
	for len(s) > n {
		out = append(out, s[:n:n])
		s = s[n:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

// dueSeconds lists the seconds of open, oldest first, each with when it is due.
func dueSeconds(open map[int64]time.Time) []dueSecond {
	out := make([]dueSecond, 0, len(open))
	for sec, next := range open {
		out = append(out, dueSecond{Second: sec, Next: next})
	}
	slices.SortFunc(out, func(a, b dueSecond) int { return cmp.Compare(a.Second, b.Second) })
	return out
}
