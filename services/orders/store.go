package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dapr/go-sdk/client"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/keylock"
	"github.com/daprshop/daprshop/internal/statestore"
)

// Outbox metadata. Dapr publishes one message per stored upsert of an outbox
// transaction; a projection for the same key replaces that message's data and is
// not stored itself. The stored op's metadata is copied into the CloudEvent, which
// is how the event gets its type.
const (
	metaProjection      = "outbox.projection"
	metaType            = "type"
	metaDataContentType = "datacontenttype"
)

// errCorrupt marks a stored record that cannot be decoded. Reading it again
// cannot help, so an event about it is poison rather than retried.
var errCorrupt = errors.New("corrupt record")

// casAttempts bounds the compare-and-swap loops: past it, the key is too busy
// and the caller is better off failing than spinning.
const casAttempts = 10

// orders holds what the handlers share: the sidecar, the locks, the prices and
// the clock.
type orders struct {
	log *slog.Logger
	// instance names this instance, as the holder of the reconciler's lease.
	instance string
	dapr     sidecar
	locks    *keylock.Locks
	// customers serialises the changes to each customer's index. A placement
	// takes its order's lock first and then its customer's, never the other
	// way round, and the two are separate sets so that they cannot deadlock.
	customers *keylock.Locks
	// buckets serialises this instance's additions to each bucket of open
	// orders (see reconcile.go), and marked is the last minute this instance
	// marked as one with orders in buckets.
	buckets *keylock.Locks
	marked  atomic.Int64
	// leased is whether this instance held the reconciler's lease at its last
	// pass, so that only the holder gives it back when it stops.
	leased atomic.Bool
	// prices remembers what the catalog answered, for cfg.priceTTL.
	prices *prices
	now    func() time.Time
	cfg    config
	// admit bounds the placements in progress.
	admit *admission
}

// firstWrite is the concurrency every single-key write uses. On the Redis store a
// write without an ETag under first-write creates the key only if it is absent
// (provided every writer of the key uses first-write), and a write with an ETag
// is a compare-and-swap; under last-write the ETag would be ignored.
var firstWrite = client.WithConcurrency(client.StateConcurrencyFirstWrite)

// readOrder reads an order and its ETag. found is false when there is no such
// order.
func (s *orders) readOrder(ctx context.Context, orderID string) (o order, etag string, found bool, err error) {
	item, err := s.dapr.GetState(ctx, s.cfg.Store, orderKey(orderID), nil)
	if err != nil {
		return o, "", false, fmt.Errorf("read order %s: %w", orderID, err)
	}
	if item == nil || len(item.Value) == 0 {
		return o, "", false, nil
	}
	if err := json.Unmarshal(item.Value, &o); err != nil {
		return o, "", false, fmt.Errorf("%w: order %s: %v", errCorrupt, orderID, err)
	}
	return o, item.Etag, true, nil
}

// outboxCommitTimeout bounds an outbox transaction (see writeOrder).
const outboxCommitTimeout = 5 * time.Second

// writeOrder saves the new order o and publishes its OrderPlaced event in one
// outbox transaction: the placement is the one change that no delivered event
// causes (the saga's changes publish after saving; see apply). The transaction
// holds exactly one stored upsert, because Dapr publishes one message per
// stored upsert, and the projection comes last, because daprd (1.14 to 1.17.5)
// drops projections from the op list while ranging over it.
func (s *orders) writeOrder(ctx context.Context, o order) error {
	// daprd publishes the event to its relay before it runs the transaction, and
	// the relay drops the event of a transaction whose marker it has not found
	// after about 10 s (outboxDiscardWhenMissingState; 11 s unpatched): a
	// transaction must have committed or failed well before then. The deadline
	// reaches the store through the sidecar.
	ctx, cancel := context.WithTimeout(ctx, outboxCommitTimeout)
	defer cancel()
	value, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode order %s: %w", o.ID, err)
	}
	payload, err := json.Marshal(o.event())
	if err != nil {
		return fmt.Errorf("encode event of order %s: %w", o.ID, err)
	}
	stored := &client.SetStateItem{
		Key:      orderKey(o.ID),
		Value:    value,
		Metadata: map[string]string{metaType: events.OrderPlaced, metaDataContentType: "application/json"},
		Options:  &client.StateOptions{Concurrency: client.StateConcurrencyFirstWrite, Consistency: client.StateConsistencyStrong},
	}
	projection := &client.SetStateItem{
		Key:      orderKey(o.ID),
		Value:    payload,
		Metadata: map[string]string{metaProjection: "true"},
	}
	ops := []*client.StateOperation{
		{Type: client.StateOperationTypeUpsert, Item: stored},
		{Type: client.StateOperationTypeUpsert, Item: projection},
	}
	if err := s.dapr.ExecuteStateTransaction(ctx, s.cfg.Store, nil, ops); err != nil {
		return fmt.Errorf("save order %s with event %s: %w", o.ID, events.OrderPlaced, err)
	}
	return nil
}

// saveOrder saves o, read with etag, by compare-and-swap, and publishes
// nothing.
func (s *orders) saveOrder(ctx context.Context, o order, etag string) error {
	value, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode order %s: %w", o.ID, err)
	}
	if err := s.dapr.SaveStateWithETag(ctx, s.cfg.Store, orderKey(o.ID), value, etag, nil, firstWrite,
		client.WithConsistency(client.StateConsistencyStrong)); err != nil {
		return fmt.Errorf("save order %s: %w", o.ID, err)
	}
	return nil
}

// indexPageSize is how many order ids the head of a customer's index holds
// before they move to a page of their own. Every placement rewrites the head,
// so bounding it keeps a placement's cost the same however many orders the
// customer has placed; a page, once written, never changes.
const indexPageSize = 100

// index is a customer's list of order ids, oldest first, as read with the
// ETag of its head (empty when the list does not exist yet). The head, under
// customerKey, holds the newest ids; the pages before it, under pageKey 1 to
// pages, hold indexPageSize ids each. Ids are only ever appended, so the id at
// a position never changes and a page's content is the same whoever writes it.
type index struct {
	ids   []string // the head's
	pages int
	etag  string
}

// storedIndex is the head of an index as stored. An index written before the
// index had pages is a bare JSON array of ids: a head with no pages.
type storedIndex struct {
	IDs   []string `json:"ids"`
	Pages int      `json:"pages"`
}

// len is the number of ids in the whole index.
func (x *index) len(pageSize int) int { return x.pages*pageSize + len(x.ids) }

// addToIndex adds orderID to the customer's list of orders with a
// compare-and-swap, starting from read when it is not nil. It runs before the
// order is saved, so that a crash between the two leaves at worst an id without
// an order, which listing skips, and never an order missing from its customer's
// list.
//
// When the head is full, its ids move to new pages first, and the head is then
// swapped for one that holds only orderID. A page is written without a
// condition: whoever writes it writes the same ids, and a page that no head
// counts yet (the swap lost, or the instance died) is written again by the
// next placement.
//
// A customer's placements in this instance take turns here: unserialised, every
// round of the compare-and-swap has one winner, so a burst of placements for
// one customer ran some of them out of attempts (seen in the e2e burst test).
// The ETag still guards against other instances.
func (s *orders) addToIndex(ctx context.Context, customerID, orderID string, read *index) error {
	key := customerKey(customerID)
	unlock := s.customers.Lock(key)
	defer unlock()
	var x index
	if read != nil {
		x = *read
	} else {
		var err error
		if x, err = s.readIndex(ctx, customerID); err != nil {
			return err
		}
	}
	for attempt := 0; attempt < casAttempts; attempt++ {
		if slices.Contains(x.ids, orderID) {
			return nil
		}
		next := storedIndex{IDs: x.ids, Pages: x.pages}
		for len(next.IDs) >= s.cfg.indexPage {
			next.Pages++
			if err := s.savePage(ctx, customerID, next.Pages, next.IDs[:s.cfg.indexPage]); err != nil {
				return err
			}
			next.IDs = next.IDs[s.cfg.indexPage:]
		}
		next.IDs = append(slices.Clip(next.IDs), orderID)
		value, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encode index of customer %s: %w", customerID, err)
		}
		if x.etag == "" {
			err = s.dapr.SaveState(ctx, s.cfg.Store, key, value, nil, firstWrite)
		} else {
			err = s.dapr.SaveStateWithETag(ctx, s.cfg.Store, key, value, x.etag, nil, firstWrite)
		}
		if err == nil {
			return nil
		}
		// Tell a lost race, where someone else changed the list, from a failure;
		// after a lost race the next attempt starts from the list as read here.
		latest, rerr := s.readIndex(ctx, customerID)
		if rerr != nil {
			return errors.Join(fmt.Errorf("save index of customer %s: %w", customerID, err), rerr)
		}
		if latest.etag == x.etag {
			return fmt.Errorf("save index of customer %s: %w", customerID, err)
		}
		x = latest
	}
	return fmt.Errorf("save index of customer %s: still changing after %d attempts", customerID, casAttempts)
}

// savePage writes page n of a customer's index.
func (s *orders) savePage(ctx context.Context, customerID string, n int, ids []string) error {
	value, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("encode page %d of the index of customer %s: %w", n, customerID, err)
	}
	if err := s.dapr.SaveState(ctx, s.cfg.Store, pageKey(customerID, n), value, nil); err != nil {
		return fmt.Errorf("save page %d of the index of customer %s: %w", n, customerID, err)
	}
	return nil
}

// readIndex reads the head of a customer's index.
func (s *orders) readIndex(ctx context.Context, customerID string) (index, error) {
	item, err := s.dapr.GetState(ctx, s.cfg.Store, customerKey(customerID), nil)
	if err != nil {
		return index{}, fmt.Errorf("read index of customer %s: %w", customerID, err)
	}
	if item == nil {
		return index{}, nil
	}
	return decodeIndex(customerID, item.Value, item.Etag)
}

// decodeIndex decodes the head of a customer's index as read with etag; an
// empty value is an index that does not exist yet.
func decodeIndex(customerID string, value []byte, etag string) (index, error) {
	if len(value) == 0 {
		return index{}, nil
	}
	var head storedIndex
	var err error
	if value[0] == '[' {
		err = json.Unmarshal(value, &head.IDs)
	} else {
		err = json.Unmarshal(value, &head)
	}
	if err != nil || head.Pages < 0 {
		return index{}, fmt.Errorf("decode index of customer %s: %w", customerID, errors.Join(errCorrupt, err))
	}
	return index{ids: head.IDs, pages: head.Pages, etag: etag}, nil
}

// readIndexRange reads the ids at positions from to to-1 (oldest first,
// 0 <= from <= to <= x.len) of a customer's index x, from the pages they are
// on and the head.
func (s *orders) readIndexRange(ctx context.Context, customerID string, x index, from, to int) ([]string, error) {
	size := s.cfg.indexPage
	base := min(from/size, x.pages) * size // the position of the first id read
	var keys []string
	for n := base/size + 1; n <= x.pages && (n-1)*size < to; n++ {
		keys = append(keys, pageKey(customerID, n))
	}
	ids := make([]string, 0, to-base)
	if len(keys) > 0 {
		pages, err := statestore.GetBulk(ctx, s.dapr, s.cfg.Store, keys...)
		if err != nil {
			return nil, fmt.Errorf("read the index of customer %s: %w", customerID, err)
		}
		for _, k := range keys {
			var page []string
			// The head counts a page only once the page is written.
			if len(pages[k].Value) == 0 {
				return nil, fmt.Errorf("read the index of customer %s: %w: %s is missing", customerID, errCorrupt, k)
			}
			if err := json.Unmarshal(pages[k].Value, &page); err != nil || len(page) != size {
				return nil, fmt.Errorf("read the index of customer %s: %w: %s holds %d ids, not %d (%v)",
					customerID, errCorrupt, k, len(page), size, err)
			}
			ids = append(ids, page...)
		}
	}
	if to > x.pages*size {
		ids = append(ids, x.ids...)
	}
	return ids[from-base : to-base], nil
}

// readOrders reads the orders named by ids, in the order of ids, skipping ids
// whose order was never saved.
func (s *orders) readOrders(ctx context.Context, ids []string) ([]order, error) {
	if len(ids) == 0 {
		return []order{}, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = orderKey(id)
	}
	read, err := statestore.GetBulk(ctx, s.dapr, s.cfg.Store, keys...)
	if err != nil {
		return nil, err
	}
	out := make([]order, 0, len(keys))
	for _, k := range keys {
		if len(read[k].Value) == 0 {
			continue
		}
		var o order
		if err := json.Unmarshal(read[k].Value, &o); err != nil {
			return nil, fmt.Errorf("decode %s: %w", k, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// claim records who placed the order for an Idempotency-Key.
type claim struct {
	RequestHash string    `json:"requestHash"`
	OrderID     string    `json:"orderId"`
	ClaimedAt   time.Time `json:"claimedAt"`
}

// readClaim reads the claim under key and its ETag. found is false when the key
// has not been claimed.
func (s *orders) readClaim(ctx context.Context, key string) (c claim, etag string, found bool, err error) {
	item, err := s.dapr.GetState(ctx, s.cfg.Store, key, nil)
	if err != nil {
		return c, "", false, fmt.Errorf("read claim %s: %w", key, err)
	}
	if item == nil {
		return c, "", false, nil
	}
	return decodeClaim(key, item.Value, item.Etag)
}

// decodeClaim decodes the claim under key as read with etag; an empty value
// is a key nobody has claimed.
func decodeClaim(key string, value []byte, etag string) (c claim, _ string, found bool, err error) {
	if len(value) == 0 {
		return c, "", false, nil
	}
	if err := json.Unmarshal(value, &c); err != nil {
		return c, "", false, fmt.Errorf("decode claim %s: %w", key, err)
	}
	return c, etag, true, nil
}

// fresh is what a placement reads, beside its claim, for the order it may
// create under orderID: the customer's index.
type fresh struct {
	orderID string
	index   index
}

// readClaimAndFresh reads the claim under key, as readClaim does, and what a
// new order orderID of the customer will need, in one call to the sidecar.
func (s *orders) readClaimAndFresh(ctx context.Context, key, customerID, orderID string) (c claim, etag string, found bool, f *fresh, err error) {
	read, err := statestore.GetBulk(ctx, s.dapr, s.cfg.Store, key, customerKey(customerID))
	if err != nil {
		return c, "", false, nil, err
	}
	if c, etag, found, err = decodeClaim(key, read[key].Value, read[key].ETag); err != nil {
		return c, "", false, nil, err
	}
	r := read[customerKey(customerID)]
	x, err := decodeIndex(customerID, r.Value, r.ETag)
	if err != nil {
		return c, "", false, nil, err
	}
	return c, etag, found, &fresh{orderID: orderID, index: x}, nil
}

// saveClaim writes c under key: created only if absent when etag is empty, else
// swapped in only if the claim still has that ETag.
func (s *orders) saveClaim(ctx context.Context, key string, c claim, etag string) error {
	return s.saveJSON(ctx, key, c, etag)
}

// createAtOnce places a new order the usual way, in three calls to the
// sidecar where create takes five: the claim c under ck, the order's id in its
// customer's index (as read in f) and in its bucket of open orders, written in
// one bulk save, and then the order with its event. done is false when the
// three could not be written together: the index's head is full and moves to
// a page first, or one of the writes failed (the key was claimed meanwhile,
// the index or the bucket changed since it was read, the store failed). The
// caller then places the order step by step, which copes with whichever of
// the three writes went through: the claim is read back, and the index and
// the bucket take an id once.
func (s *orders) createAtOnce(ctx context.Context, ck string, c claim, o order, f *fresh) (placed order, done bool, err error) {
	if len(f.index.ids) >= s.cfg.indexPage {
		return order{}, false, nil
	}
	unlock := s.locks.Lock(orderKey(o.ID))
	defer unlock()
	if err := s.writeFirst(ctx, ck, c, o, f.index); err != nil {
		s.log.DebugContext(ctx, "claim, index and bucket not saved at once; placing step by step",
			"orderId", o.ID, "err", err)
		return order{}, false, nil
	}
	placed, err = s.saveNew(ctx, o)
	return placed, true, err
}

// writeFirst makes, in one bulk save, the writes that come before a new order o
// is saved: its claim c under ck, and its id added to its customer's index x
// and, while the reconciler runs, to its bucket of open orders, which is read
// here. The bucket is under its lock from before it is read, and the index
// from before the save, until the save has answered, as in addToOpen and
// addToIndex.
func (s *orders) writeFirst(ctx context.Context, ck string, c claim, o order, x index) error {
	claimed, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode claim %s: %w", ck, err)
	}
	indexed, err := json.Marshal(storedIndex{IDs: append(slices.Clip(x.ids), o.ID), Pages: x.pages})
	if err != nil {
		return fmt.Errorf("encode index of customer %s: %w", o.CustomerID, err)
	}
	items := []*client.SetStateItem{
		firstWriteItem(ck, claimed, ""),
		firstWriteItem(customerKey(o.CustomerID), indexed, x.etag),
	}
	if s.cfg.reconcileInterval > 0 {
		if err := s.markMinute(ctx, o.CreatedAt); err != nil {
			return err
		}
		key := openKey(o.CreatedAt.Unix(), shardOf(o.ID))
		unlockBucket := s.buckets.Lock(key)
		defer unlockBucket()
		read, err := s.dapr.GetState(ctx, s.cfg.Store, key, nil)
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		b, found, err := statestore.DecodeJSON[bucket](key, statestore.Read{Value: read.Value})
		if err != nil {
			return err
		}
		etag := ""
		if found {
			etag = read.Etag
		}
		b.IDs = append(b.IDs, o.ID)
		opened, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("encode %s: %w", key, err)
		}
		items = append(items, firstWriteItem(key, opened, etag))
	}
	unlockIndex := s.customers.Lock(customerKey(o.CustomerID))
	defer unlockIndex()
	return s.dapr.SaveBulkState(ctx, s.cfg.Store, items...)
}

// firstWriteItem is a write of value at key under first-write: created only if
// absent when etag is empty, else swapped in only if the key still has etag.
func firstWriteItem(key string, value []byte, etag string) *client.SetStateItem {
	item := &client.SetStateItem{Key: key, Value: value,
		Options: &client.StateOptions{Concurrency: client.StateConcurrencyFirstWrite}}
	if etag != "" {
		item.Etag = &client.ETag{Value: etag}
	}
	return item
}
