package statestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// GetJSON reads the JSON value at key into a T. found is false, and v the zero T,
// when the key is absent.
func GetJSON[T any](ctx context.Context, c Client, store, key string) (v T, found bool, err error) {
	item, err := c.GetState(ctx, store, key, nil)
	if err != nil {
		return v, false, fmt.Errorf("read %s: %w", key, err)
	}
	if len(item.Value) == 0 {
		return v, false, nil
	}
	if err := json.Unmarshal(item.Value, &v); err != nil {
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
	_, err := Update(ctx, c, store, key, func(cur []byte) ([]byte, error) {
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
