package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dapr/go-sdk/client"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
	"github.com/daprshop/daprshop/internal/events"
)

// fakeSidecar is an in-memory sidecar with the Redis state store's rules and a
// catalog app behind it. A write without an ETag under first-write creates the
// key only if it is absent or was last written without first-write; a write
// with an ETag succeeds only if the key has that version; under last-write the
// ETag is ignored. A transaction is all or nothing here, which is stricter than
// Redis: the service must not rely on a rollback anyway, and its locks make sure
// it never needs one.
type fakeSidecar struct {
	mu        sync.Mutex
	entries   map[string]*fakeEntry
	products  map[string]product
	txs       [][]client.StateOperation
	saves     []string // keys written by SaveState and SaveBulkState, in order
	invokes   []string
	gets      int
	bulkGets  int
	bulkSaves int

	// fail, when set, is asked before each call; a non-nil answer is the call's
	// error. method is the go-sdk method name, key the state key (each key of a
	// bulk read, the first key of a transaction) or the invoked method name.
	fail func(method, key string) error
	// beforeTx, when set, runs before each transaction is applied, outside the
	// fake's lock, so that a test can change the store under the service's feet
	// the way another instance would.
	beforeTx func(ops []*client.StateOperation)
	// catalogAnswer, when set, replaces the catalog's answer.
	catalogAnswer []byte
	// pub records the events published directly, outside the outbox.
	pub daprfake.Client
	// consumers answers the reconciler's lookups.
	consumers fakeConsumers
}

// fakeConsumers is what the inventory, payments and notifications answer the
// reconciler's lookups with.
type fakeConsumers struct {
	notified     map[string]bool   // event ids whose notification was added to a feed
	reservations map[string]string // the status of each order's reservation
	charges      map[string]string // the status of each order's charge
}

type fakeEntry struct {
	value      []byte
	version    int
	firstWrite bool
}

var _ sidecar = (*fakeSidecar)(nil)

// errETagMismatch is what the fake answers a conditional write that lost.
var errETagMismatch = errors.New("possible etag mismatch")

func newFake() *fakeSidecar {
	return &fakeSidecar{
		entries:   map[string]*fakeEntry{},
		consumers: fakeConsumers{notified: map[string]bool{}, reservations: map[string]string{}, charges: map[string]string{}},
		products: map[string]product{
			"apple":  {ID: "apple", Name: "Apple", PriceCents: 120, Currency: "EUR"},
			"pear":   {ID: "pear", Name: "Pear", PriceCents: 95, Currency: "EUR"},
			"banana": {ID: "banana", Name: "Banana", PriceCents: 30, Currency: "USD"},
		},
	}
}

func (f *fakeSidecar) failure(method, key string) error {
	if f.fail == nil {
		return nil
	}
	return f.fail(method, key)
}

func (f *fakeSidecar) GetState(_ context.Context, _, key string, _ map[string]string) (*client.StateItem, error) {
	if err := f.failure("GetState", key); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	item := &client.StateItem{Key: key}
	if e, ok := f.entries[key]; ok {
		item.Value = append([]byte(nil), e.value...)
		item.Etag = strconv.Itoa(e.version)
	}
	return item, nil
}

func (f *fakeSidecar) GetBulkState(_ context.Context, _ string, keys []string, _ map[string]string, _ int32) ([]*client.BulkStateItem, error) {
	if len(keys) == 0 {
		return nil, errors.New("keys required")
	}
	for _, k := range keys {
		if err := f.failure("GetBulkState", k); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bulkGets++
	out := make([]*client.BulkStateItem, 0, len(keys))
	for _, k := range keys {
		item := &client.BulkStateItem{Key: k}
		if e, ok := f.entries[k]; ok {
			item.Value = append([]byte(nil), e.value...)
			item.Etag = strconv.Itoa(e.version)
		}
		out = append(out, item)
	}
	return out, nil
}

func (f *fakeSidecar) SaveState(ctx context.Context, store, key string, data []byte, meta map[string]string, so ...client.StateOption) error {
	return f.SaveStateWithETag(ctx, store, key, data, "", meta, so...)
}

func (f *fakeSidecar) SaveStateWithETag(_ context.Context, _, key string, data []byte, etag string, _ map[string]string, so ...client.StateOption) error {
	if err := f.failure("SaveState", key); err != nil {
		return err
	}
	// The go-sdk sends last-write when no option is given.
	opts := &client.StateOptions{Concurrency: client.StateConcurrencyLastWrite}
	if len(so) > 0 {
		opts = &client.StateOptions{}
		for _, o := range so {
			o(opts)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(key, etag, opts.Concurrency); err != nil {
		return err
	}
	f.put(key, data, opts.Concurrency == client.StateConcurrencyFirstWrite)
	f.saves = append(f.saves, key)
	return nil
}

// SaveBulkState writes each item on its own, as daprd does on the Redis store
// (in parallel, each under its own condition): an item that fails leaves the
// others written, and the errors are joined. The fail hook is asked about each
// item as "SaveState", so that a test that fails a key fails it in either call.
func (f *fakeSidecar) SaveBulkState(_ context.Context, _ string, items ...*client.SetStateItem) error {
	f.mu.Lock()
	f.bulkSaves++
	f.mu.Unlock()
	var errs []error
	for _, it := range items {
		if err := f.failure("SaveState", it.Key); err != nil {
			errs = append(errs, err)
			continue
		}
		etag, conc := daprfake.Condition(it)
		f.mu.Lock()
		err := f.check(it.Key, etag, conc)
		if err == nil {
			f.put(it.Key, it.Value, conc == client.StateConcurrencyFirstWrite)
			f.saves = append(f.saves, it.Key)
		}
		f.mu.Unlock()
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// check applies the Redis store's rule for a write of key with etag.
func (f *fakeSidecar) check(key, etag string, c client.StateConcurrency) error {
	ver := 0
	if c != client.StateConcurrencyLastWrite && etag != "" {
		v, err := strconv.Atoi(etag)
		if err != nil {
			return fmt.Errorf("invalid etag %q", etag)
		}
		ver = v
	}
	e, ok := f.entries[key]
	if !ok || e.version == ver || (!e.firstWrite && ver == 0) {
		return nil
	}
	return fmt.Errorf("failed to set key %s: %w", key, errETagMismatch)
}

func (f *fakeSidecar) put(key string, data []byte, firstWrite bool) {
	e, ok := f.entries[key]
	if !ok {
		e = &fakeEntry{}
		f.entries[key] = e
	}
	e.value = append([]byte(nil), data...)
	e.version++
	if firstWrite {
		e.firstWrite = true
	}
}

func (f *fakeSidecar) ExecuteStateTransaction(_ context.Context, _ string, _ map[string]string, ops []*client.StateOperation) error {
	if len(ops) == 0 {
		return nil
	}
	if err := f.failure("ExecuteStateTransaction", ops[0].Item.Key); err != nil {
		return err
	}
	if f.beforeTx != nil {
		f.beforeTx(ops)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	record := make([]client.StateOperation, len(ops))
	for i, op := range ops {
		item := *op.Item
		record[i] = client.StateOperation{Type: op.Type, Item: &item}
	}
	f.txs = append(f.txs, record)
	var stored []*client.StateOperation
	for _, op := range ops {
		if op.Type != client.StateOperationTypeUpsert || op.Item.Metadata["outbox.projection"] == "true" {
			continue
		}
		stored = append(stored, op)
		etag, conc := daprfake.Condition(op.Item)
		if err := f.check(op.Item.Key, etag, conc); err != nil {
			return fmt.Errorf("error executing state transaction: %w", err)
		}
	}
	for _, op := range stored {
		f.put(op.Item.Key, op.Item.Value, false)
	}
	return nil
}

// DeleteBulkStateItems deletes the items, each only if it still has its ETag
// when it has one; it checks them all before it deletes any.
func (f *fakeSidecar) DeleteBulkStateItems(_ context.Context, _ string, items []*client.DeleteStateItem) error {
	for _, it := range items {
		if err := f.failure("DeleteBulkStateItems", it.Key); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, it := range items {
		e, ok := f.entries[it.Key]
		if ok && it.Etag != nil && strconv.Itoa(e.version) != it.Etag.Value {
			return fmt.Errorf("failed to delete key %s: %w", it.Key, errETagMismatch)
		}
	}
	for _, it := range items {
		delete(f.entries, it.Key)
	}
	return nil
}

func (f *fakeSidecar) InvokeMethod(_ context.Context, appID, methodName, verb string) ([]byte, error) {
	if err := f.failure("InvokeMethod", methodName); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invokes = append(f.invokes, appID+" "+verb+" "+methodName)
	method, query, _ := strings.Cut(methodName, "?")
	if appID != "catalog" {
		return f.consumers.answer(appID, verb, method, query)
	}
	if f.catalogAnswer != nil {
		return f.catalogAnswer, nil
	}
	if appID != "catalog" || verb != "GET" || method != "products" || !strings.HasPrefix(query, "ids=") {
		return nil, fmt.Errorf("no route for %s %s on %s", verb, methodName, appID)
	}
	out := []product{}
	for _, id := range strings.Split(strings.TrimPrefix(query, "ids="), ",") {
		if p, ok := f.products[id]; ok {
			out = append(out, p)
		}
	}
	return json.Marshal(out)
}

// answer answers a lookup as the consumer appID would.
func (c *fakeConsumers) answer(appID, verb, method, query string) ([]byte, error) {
	ids, ok := strings.CutPrefix(query, "orderIds=")
	if verb != "GET" || !ok {
		return nil, fmt.Errorf("no route for %s %s?%s on %s", verb, method, query, appID)
	}
	type entry struct {
		OrderID string `json:"orderId"`
		Type    string `json:"type,omitempty"`
		Status  string `json:"status,omitempty"`
	}
	out := []entry{}
	for _, id := range strings.Split(ids, ",") {
		switch appID + " " + method {
		case "notifications notified":
			for _, typ := range []string{events.OrderConfirmed, events.OrderCancelled} {
				if c.notified[events.EventID(id, typ)] {
					out = append(out, entry{OrderID: id, Type: typ})
				}
			}
		case "inventory reservations":
			if st, ok := c.reservations[id]; ok {
				out = append(out, entry{OrderID: id, Status: st})
			}
		case "payments charges":
			if st, ok := c.charges[id]; ok {
				out = append(out, entry{OrderID: id, Status: st})
			}
		default:
			return nil, fmt.Errorf("no route for %s %s on %s", verb, method, appID)
		}
	}
	return json.Marshal(out)
}

// PublishEvent records the event; fail is asked with the topic as the key.
func (f *fakeSidecar) PublishEvent(ctx context.Context, pubsubName, topic string, data interface{}, opts ...client.PublishEventOption) error {
	if err := f.failure("PublishEvent", topic); err != nil {
		return err
	}
	return f.pub.PublishEvent(ctx, pubsubName, topic, data, opts...)
}

// errStoreDown is what failOn answers.
var errStoreDown = errors.New("redis: connection refused")

// failOn is a fail hook that fails every call of method on a key that starts
// with prefix.
func failOn(method, prefix string) func(string, string) error {
	return func(m, key string) error {
		if m == method && strings.HasPrefix(key, prefix) {
			return errStoreDown
		}
		return nil
	}
}

// Helpers for the tests to look inside.

// published returns the events published outside the outbox, in order.
func (f *fakeSidecar) published() []daprfake.Event {
	return f.pub.Published()
}

// reads returns how many single and bulk reads the store has served.
func (f *fakeSidecar) reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets + f.bulkGets
}

func (f *fakeSidecar) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.entries))
	for k := range f.entries {
		out = append(out, k)
	}
	return out
}

func (f *fakeSidecar) transactions() [][]client.StateOperation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]client.StateOperation(nil), f.txs...)
}

// plainSaves returns the order keys written by SaveState (rather than in a
// transaction), or those among keys when keys are given.
func (f *fakeSidecar) plainSaves(keys ...string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, k := range f.saves {
		if (len(keys) == 0 && strings.HasPrefix(k, orderKey(""))) || slices.Contains(keys, k) {
			out = append(out, k)
		}
	}
	return out
}

func (f *fakeSidecar) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.invokes...)
}

func (f *fakeSidecar) value(key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.entries[key]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), e.value...), true
}

func (f *fakeSidecar) version(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.entries[key]; ok {
		return e.version
	}
	return 0
}

// set writes key directly, as another writer would.
func (f *fakeSidecar) set(t testing.TB, key string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	f.setBytes(key, b)
}

// setBytes writes key directly, with first-write like every writer.
func (f *fakeSidecar) setBytes(key string, b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.put(key, b, true)
}
