package statestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dapr/go-sdk/client"
)

// GetJSON reads the JSON value at key into a T. found is false, and v the zero T,
// when the key is absent.
func GetJSON[T any](ctx context.Context, c Client, store, key string) (v T, found bool, err error) {
	item, err := c.GetState(ctx, store, key, nil)
	if err != nil {
		return v, false, fmt.Errorf("read %s: %w", key, err)
	}
	return DecodeJSON[T](key, Read{Value: item.Value, ETag: item.Etag})
}

// BulkReader is the bulk read of the Dapr client. *client.GRPCClient satisfies
// it.
type BulkReader interface {
	GetBulkState(ctx context.Context, storeName string, keys []string, meta map[string]string, parallelism int32) ([]*client.BulkStateItem, error)
}

// bulkParallelism bounds the reads a sidecar makes at once for one bulk read:
// a store without bulk reads of its own (Redis) gets one read per key, and a
// hundred at once is a burst that the requests sharing the sidecar wait behind.
const bulkParallelism = 16

// GetBulk reads keys in one call and returns what it read of each, by key; an
// absent key has no Value. A key the store could not read fails the whole read.
func GetBulk(ctx context.Context, c BulkReader, store string, keys ...string) (map[string]Read, error) {
	items, err := c.GetBulkState(ctx, store, keys, nil, int32(min(len(keys), bulkParallelism)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", strings.Join(keys, ", "), err)
	}
	out := make(map[string]Read, len(items))
	for _, it := range items {
		if it == nil {
			continue
		}
		if it.Error != "" {
			return nil, fmt.Errorf("read %s: %s", it.Key, it.Error)
		}
		out[it.Key] = Read{Value: it.Value, ETag: it.Etag}
	}
	return out, nil
}

// GetBulkJSON reads keys in one call, as GetBulk does, and decodes each key
// present into a T, by key; an absent key is not in the result.
func GetBulkJSON[T any](ctx context.Context, c BulkReader, store string, keys ...string) (map[string]T, error) {
	read, err := GetBulk(ctx, c, store, keys...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]T, len(read))
	for k, r := range read {
		v, found, err := DecodeJSON[T](k, r)
		if err != nil {
			return nil, err
		}
		if found {
			out[k] = v
		}
	}
	return out, nil
}

// DecodeJSON decodes r, read from key, into a T; found is false when the key is
// absent.
func DecodeJSON[T any](key string, r Read) (v T, found bool, err error) {
	if len(r.Value) == 0 {
		return v, false, nil
	}
	if err := json.Unmarshal(r.Value, &v); err != nil {
		var zero T
		return zero, false, fmt.Errorf("decode %s: %w", key, err)
	}
	return v, true, nil
}

// UpdateJSON is Update for a key that holds the JSON of a T. change gets the
// decoded value, or the zero T with found false when the key is absent, changes
// it in place and reports whether there is anything to write. It is called again
// on a fresh read after a conflict, so it must not keep anything from one call to
// the next.
func UpdateJSON[T any](ctx context.Context, c Client, store, key string, change func(v *T, found bool) (changed bool, err error)) error {
	return updateJSON(ctx, c, store, key, nil, change)
}

// UpdateJSONFrom is UpdateJSON starting from first, which the caller has just
// read, instead of from a read of its own; after a conflict it starts again from
// a fresh read. It spares a read where the caller had to read the key anyway.
func UpdateJSONFrom[T any](ctx context.Context, c Client, store, key string, first Read, change func(v *T, found bool) (changed bool, err error)) error {
	return updateJSON(ctx, c, store, key, &first, change)
}

func updateJSON[T any](ctx context.Context, c Client, store, key string, first *Read, change func(v *T, found bool) (changed bool, err error)) error {
	_, err := update(ctx, c, store, key, first, func(cur []byte) ([]byte, error) {
		var v T
		if cur != nil {
			if err := json.Unmarshal(cur, &v); err != nil {
				return nil, fmt.Errorf("decode %s: %w", key, err)
			}
		}
		changed, err := change(&v, cur != nil)
		if err != nil || !changed {
			return nil, err
		}
		return json.Marshal(v)
	})
	return err
}

// CreateJSON writes v at key, as JSON, unless the key exists, and returns the
// value that stands: v, or the one someone else created first. It is how an
// operation records its outcome once, whichever instance gets there first.
func CreateJSON[T any](ctx context.Context, c Client, store, key string, v T) (T, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return v, err
	}
	err = Save(ctx, c, store, key, data, "")
	if !errors.Is(err, ErrConflict) {
		return v, err
	}
	existing, found, rerr := GetJSON[T](ctx, c, store, key)
	if rerr != nil || !found {
		return v, fmt.Errorf("create %s: %w", key, errors.Join(err, rerr))
	}
	return existing, nil
}
