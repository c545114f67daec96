// Package daprfake is an in-memory stand-in for the state and pub/sub methods of
// the Dapr client, for unit tests that run without a sidecar. Its state store
// follows the rules of Dapr's Redis store (daprd 1.17.5), which the services are
// written against:
//
//   - ETags are version numbers, "1" after the first write.
//   - A single-key write with Concurrency FirstWrite and an ETag is
//     compare-and-swap; with no ETag it is create-if-absent only if the existing
//     key was itself written with FirstWrite, and a refused write is reported as a
//     generic error, not as an ETag mismatch.
//   - A transaction applies each operation on its own: an ETag mismatch fails that
//     operation and the transaction, but the other operations stay applied.
//
// Hook lets a test fail any call, and Published lists what was published. FailOn
// and Interloper set up the failures and races the services' tests share, and
// CloudEvent and Deliver play the sidecar delivering an event to an app.
package daprfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"

	pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/dapr/go-sdk/client"
)

// Event is one published event, as the fake received it.
type Event struct {
	PubSub      string
	Topic       string
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// ID is the CloudEvent id the publisher asked for.
func (e Event) ID() string { return e.Metadata["cloudevent.id"] }

// Type is the CloudEvent type the publisher asked for.
func (e Event) Type() string { return e.Metadata["cloudevent.type"] }

// Client is the fake. The zero value is ready to use and safe for concurrent use.
type Client struct {
	// Hook, when set, is called before every call with the method's name and the
	// state key or topic it is about (for a bulk read, each key in turn; for a
	// transaction, each operation's key in turn); a non-nil result fails the call
	// (or, in a transaction, that one operation) with that error. It is called
	// with the fake's lock held, so it must not call the fake.
	Hook func(method, key string) error

	mu        sync.Mutex
	stores    map[string]map[string]*entry
	published []Event
	reads     Reads
}

// Reads counts the reads the fake has served, so that a test can tell one
// bulk read from many: single-key reads, bulk reads, and the keys the bulk
// reads named, in order.
type Reads struct {
	Single, Bulk int
	BulkKeys     []string
}

// Reads returns the reads served so far.
func (c *Client) Reads() Reads {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reads
	r.BulkKeys = append([]string(nil), r.BulkKeys...)
	return r
}

type entry struct {
	value      []byte
	version    int
	firstWrite bool
}

// ErrETagMismatch is the error of a write whose ETag did not match.
var ErrETagMismatch = errors.New("possible etag mismatch")

func (c *Client) hook(method, key string) error {
	if c.Hook == nil {
		return nil
	}
	return c.Hook(method, key)
}

func (c *Client) store(name string) map[string]*entry {
	if c.stores == nil {
		c.stores = map[string]map[string]*entry{}
	}
	s, ok := c.stores[name]
	if !ok {
		s = map[string]*entry{}
		c.stores[name] = s
	}
	return s
}

// Put stores v (JSON-encoded unless it is []byte) at key without any check, as a
// last-write, for test setup.
func (c *Client) Put(store, key string, v any) {
	data, ok := v.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(v); err != nil {
			panic(fmt.Sprintf("daprfake: encode %s: %v", key, err))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.store(store)
	e, ok := s[key]
	if !ok {
		e = &entry{}
		s[key] = e
	}
	e.value = append([]byte(nil), data...)
	e.version++
}

// Value returns the value at key and whether the key exists.
func (c *Client) Value(store, key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.store(store)[key]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), e.value...), true
}

// Keys returns the keys of store, sorted.
func (c *Client) Keys(store string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.stores[store]))
	for k := range c.stores[store] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Dump returns every key of store with its value, for a test to check that a
// request changed nothing.
func (c *Client) Dump(store string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.stores[store]))
	for k, e := range c.stores[store] {
		out[k] = string(e.value)
	}
	return out
}

// Published returns the events published so far, in order.
func (c *Client) Published() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.published...)
}

// GetState reads key. An absent key reads as an item with no value and no ETag,
// as on Redis.
func (c *Client) GetState(_ context.Context, storeName, key string, _ map[string]string) (*client.StateItem, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads.Single++
	if err := c.hook("GetState", key); err != nil {
		return nil, err
	}
	item := &client.StateItem{Key: key}
	if e, ok := c.store(storeName)[key]; ok {
		item.Value = append([]byte(nil), e.value...)
		item.Etag = strconv.Itoa(e.version)
	}
	return item, nil
}

// GetBulkState reads keys, one item per key, in order.
func (c *Client) GetBulkState(_ context.Context, storeName string, keys []string, _ map[string]string, _ int32) ([]*client.BulkStateItem, error) {
	if len(keys) == 0 {
		return nil, errors.New("keys required")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads.Bulk++
	c.reads.BulkKeys = append(c.reads.BulkKeys, keys...)
	items := make([]*client.BulkStateItem, 0, len(keys))
	for _, k := range keys {
		if err := c.hook("GetBulkState", k); err != nil {
			return nil, err
		}
		item := &client.BulkStateItem{Key: k}
		if e, ok := c.store(storeName)[k]; ok {
			item.Value = append([]byte(nil), e.value...)
			item.Etag = strconv.Itoa(e.version)
		}
		items = append(items, item)
	}
	return items, nil
}

// SaveState writes key with no ETag.
func (c *Client) SaveState(ctx context.Context, storeName, key string, data []byte, meta map[string]string, so ...client.StateOption) error {
	return c.SaveStateWithETag(ctx, storeName, key, data, "", meta, so...)
}

// SaveStateWithETag writes key by the Redis store's rules for a single write.
func (c *Client) SaveStateWithETag(_ context.Context, storeName, key string, data []byte, etag string, _ map[string]string, so ...client.StateOption) error {
	opts := client.StateOptions{Concurrency: client.StateConcurrencyLastWrite}
	if len(so) > 0 {
		opts = client.StateOptions{}
		for _, o := range so {
			o(&opts)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.hook("SaveState", key); err != nil {
		return err
	}
	return c.set(storeName, key, data, etag, opts.Concurrency, true)
}

// Condition is the ETag and the concurrency under which it is to be written:
// the go-sdk sends last-write when the item names no concurrency.
func Condition(it *client.SetStateItem) (etag string, concurrency client.StateConcurrency) {
	concurrency = client.StateConcurrencyLastWrite
	if it.Options != nil {
		concurrency = it.Options.Concurrency
	}
	if it.Etag != nil {
		etag = it.Etag.Value
	}
	return etag, concurrency
}

// ExecuteStateTransaction applies each operation on its own, as Redis does: the
// operations that succeed stay applied even when another fails.
func (c *Client) ExecuteStateTransaction(_ context.Context, storeName string, _ map[string]string, ops []*client.StateOperation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, op := range ops {
		if op == nil || op.Item == nil {
			return errors.New("nil operation")
		}
		it := op.Item
		if err := c.hook("ExecuteStateTransaction", it.Key); err != nil {
			errs = append(errs, err)
			continue
		}
		etag, concurrency := Condition(it)
		var err error
		switch op.Type {
		case client.StateOperationTypeUpsert:
			err = c.set(storeName, it.Key, it.Value, etag, concurrency, false)
		case client.StateOperationTypeDelete:
			err = c.del(storeName, it.Key, etag)
		default:
			err = fmt.Errorf("unknown operation type %v", op.Type)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("error executing state transaction: %w", errors.Join(errs...))
	}
	return nil
}

// set is the Redis store's set script. A single write marks the key as written
// with FirstWrite when asked to; a write in a transaction never does.
func (c *Client) set(storeName, key string, data []byte, etag string, concurrency client.StateConcurrency, single bool) error {
	ver := 0
	if concurrency != client.StateConcurrencyLastWrite && etag != "" {
		v, err := strconv.Atoi(etag)
		if err != nil {
			return fmt.Errorf("invalid etag %q: %w", etag, err)
		}
		ver = v
	}
	s := c.store(storeName)
	e, ok := s[key]
	if ok && e.version != ver && (e.firstWrite || ver != 0) {
		if etag != "" {
			return fmt.Errorf("failed to set key %s: %w", key, ErrETagMismatch)
		}
		return fmt.Errorf("failed to set key %s", key)
	}
	if !ok {
		e = &entry{}
		s[key] = e
	}
	e.value = append([]byte(nil), data...)
	e.version++
	if single && concurrency == client.StateConcurrencyFirstWrite {
		e.firstWrite = true
	}
	return nil
}

// del is the Redis store's delete script, which checks an ETag whatever the
// concurrency asked for.
func (c *Client) del(storeName, key, etag string) error {
	s := c.store(storeName)
	e, ok := s[key]
	if ok && etag != "" && strconv.Itoa(e.version) != etag {
		return fmt.Errorf("failed to delete %s: %w", key, ErrETagMismatch)
	}
	delete(s, key)
	return nil
}

// PublishEvent records the event.
func (c *Client) PublishEvent(_ context.Context, pubsubName, topicName string, data interface{}, opts ...client.PublishEventOption) error {
	req := &pb.PublishEventRequest{PubsubName: pubsubName, Topic: topicName}
	for _, o := range opts {
		o(req)
	}
	switch d := data.(type) {
	case []byte:
		req.Data = append([]byte(nil), d...)
	case string:
		req.Data = []byte(d)
	default:
		b, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("error serializing input struct: %w", err)
		}
		req.Data, req.DataContentType = b, "application/json"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.hook("PublishEvent", topicName); err != nil {
		return err
	}
	c.published = append(c.published, Event{
		PubSub:      req.GetPubsubName(),
		Topic:       req.GetTopic(),
		Data:        req.GetData(),
		ContentType: req.GetDataContentType(),
		Metadata:    req.GetMetadata(),
	})
	return nil
}
