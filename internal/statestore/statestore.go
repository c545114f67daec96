// Package statestore holds the two single-key writes every daprshop service makes
// on its Dapr state store, written once for the Redis store's rules:
//
//   - A write with Concurrency FirstWrite and no ETag is create-if-absent only if
//     the existing key was also written with FirstWrite, so every write here passes
//     FirstWrite; with an ETag it is compare-and-swap.
//   - A failed create-if-absent, and on some stores a failed compare-and-swap, comes
//     back as a generic error rather than a conflict code, so after a failed write
//     the key is read again: if its ETag moved, someone else wrote it (a conflict);
//     if not, the write itself failed.
//
// Multi-key changes are not made here: on Redis a state transaction does not undo
// its other operations when one operation's ETag mismatches, so the services build
// them from these single-key writes instead (see the inventory and payments
// services).
//
// GetJSON, UpdateJSON and CreateJSON are the same reads and writes for a key that
// holds the JSON of one Go type, which is how every service keeps its records.
package statestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dapr/go-sdk/client"
)

// Client is the part of the Dapr client that the writes use. *client.GRPCClient
// satisfies it.
type Client interface {
	GetState(ctx context.Context, storeName, key string, meta map[string]string) (*client.StateItem, error)
	SaveStateWithETag(ctx context.Context, storeName, key string, data []byte, etag string, meta map[string]string, so ...client.StateOption) error
}

// ErrConflict reports that the key was written by someone else between the read
// and the write.
var ErrConflict = errors.New("state changed concurrently")

// Attempts is how many times Update reads, changes and writes a key before it gives
// up on a key that keeps changing.
const Attempts = 5

// Save writes value at key. With etag "" the write is create-if-absent; otherwise
// it succeeds only if the key still has that ETag. It returns an error wrapping
// ErrConflict when someone else wrote the key first.
//
// A write whose answer was lost after it succeeded also reads as a conflict, so a
// caller that retries a conflict must make its change idempotent.
func Save(ctx context.Context, c Client, store, key string, value []byte, etag string) error {
	err := c.SaveStateWithETag(ctx, store, key, value, etag, nil,
		client.WithConcurrency(client.StateConcurrencyFirstWrite))
	if err == nil {
		return nil
	}
	now, rerr := c.GetState(ctx, store, key, nil)
	if rerr != nil {
		return fmt.Errorf("save %s: %w (and reading it back: %v)", key, err, rerr)
	}
	if now.Etag != etag {
		return fmt.Errorf("save %s: %w", key, ErrConflict)
	}
	return fmt.Errorf("save %s: %w", key, err)
}

// Update reads key, calls change with its value (nil when the key is absent) and
// writes what change returns under the ETag it read, so that a concurrent writer
// is never overwritten. On a conflict it starts again from a fresh read, up to
// Attempts times. A nil result from change means there is nothing to write; an
// error from change is returned as it is. Update returns the value the key holds
// afterwards.
func Update(ctx context.Context, c Client, store, key string, change func(cur []byte) ([]byte, error)) ([]byte, error) {
	return update(ctx, c, store, key, nil, change)
}

// Read is a key's value and ETag as the caller has just read them, in a bulk
// read for instance. A nil or empty Value is an absent key.
type Read struct {
	Value []byte
	ETag  string
}

// update is Update, starting from first when it is not nil instead of from a
// read of its own.
func update(ctx context.Context, c Client, store, key string, first *Read, change func(cur []byte) ([]byte, error)) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		item := first
		first = nil
		if item == nil {
			got, err := c.GetState(ctx, store, key, nil)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", key, err)
			}
			item = &Read{Value: got.Value, ETag: got.Etag}
		}
		cur := item.Value
		if len(cur) == 0 {
			cur = nil
		}
		next, err := change(cur)
		if err != nil {
			return nil, err
		}
		if next == nil {
			return cur, nil
		}
		err = Save(ctx, c, store, key, next, item.ETag)
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, ErrConflict) || attempt == Attempts {
			return nil, err
		}
		if err := pause(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// pause waits a little longer after each conflict, with jitter, so that writers
// racing for one key spread out instead of colliding again.
func pause(ctx context.Context, attempt int) error {
	d := time.Duration(attempt)*5*time.Millisecond + rand.N(5*time.Millisecond)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
