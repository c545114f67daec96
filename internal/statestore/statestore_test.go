package statestore

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
)

var _ Client = (*daprfake.Client)(nil)

func TestSave(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("store down")
	tests := []struct {
		name     string
		setup    func(c *daprfake.Client)
		etag     string
		conflict bool
		failure  error
	}{
		{name: "create absent"},
		{name: "create over an existing key is a conflict", setup: func(c *daprfake.Client) {
			require.NoError(t, Save(ctx, c, "s", "k", []byte("a"), ""))
		}, conflict: true},
		{name: "compare-and-swap", setup: func(c *daprfake.Client) {
			require.NoError(t, Save(ctx, c, "s", "k", []byte("a"), ""))
		}, etag: "1"},
		{name: "stale etag is a conflict", setup: func(c *daprfake.Client) {
			require.NoError(t, Save(ctx, c, "s", "k", []byte("a"), ""))
			require.NoError(t, Save(ctx, c, "s", "k", []byte("b"), "1"))
		}, etag: "1", conflict: true},
		{name: "write failure is not a conflict", setup: func(c *daprfake.Client) {
			c.Hook = func(method, _ string) error {
				if method == "SaveState" {
					return boom
				}
				return nil
			}
		}, failure: boom},
		{name: "failure to read back is reported", setup: func(c *daprfake.Client) {
			c.Hook = func(string, string) error { return boom }
		}, failure: boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &daprfake.Client{}
			if tt.setup != nil {
				tt.setup(c)
			}
			err := Save(ctx, c, "s", "k", []byte("new"), tt.etag)
			switch {
			case tt.conflict:
				assert.ErrorIs(t, err, ErrConflict)
			case tt.failure != nil:
				assert.ErrorIs(t, err, tt.failure)
				assert.NotErrorIs(t, err, ErrConflict)
			default:
				require.NoError(t, err)
				v, _ := c.Value("s", "k")
				assert.Equal(t, "new", string(v))
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	invalid := errors.New("invalid")
	appendX := func(cur []byte) ([]byte, error) { return append(cur, 'x'), nil }
	tests := []struct {
		name    string
		setup   func(c *daprfake.Client)
		change  func(cur []byte) ([]byte, error)
		want    string
		wantErr error
	}{
		{name: "absent key is created", change: appendX, want: "x"},
		{name: "existing key is changed", setup: func(c *daprfake.Client) {
			require.NoError(t, Save(ctx, c, "s", "k", []byte("a"), ""))
		}, change: appendX, want: "ax"},
		{name: "nothing to write", setup: func(c *daprfake.Client) {
			require.NoError(t, Save(ctx, c, "s", "k", []byte("a"), ""))
		}, change: func([]byte) ([]byte, error) { return nil, nil }, want: "a"},
		{name: "change refuses", change: func([]byte) ([]byte, error) { return nil, invalid }, wantErr: invalid},
		{name: "read failure", setup: func(c *daprfake.Client) {
			c.Hook = func(string, string) error { return errors.New("down") }
		}, change: appendX, wantErr: errors.New("down")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &daprfake.Client{}
			if tt.setup != nil {
				tt.setup(c)
			}
			got, err := Update(ctx, c, "s", "k", tt.change)
			if tt.wantErr != nil {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

// TestUpdateRetriesConflicts races writers on one key without any lock: each
// increment must land exactly once, retried after the conflicts it meets.
func TestUpdateRetriesConflicts(t *testing.T) {
	ctx := context.Background()
	c := &daprfake.Client{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	landed := 0
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := Update(ctx, c, "s", "k", func(cur []byte) ([]byte, error) { return append(cur, 'x'), nil })
			if err == nil {
				mu.Lock()
				landed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	v, _ := c.Value("s", "k")
	assert.Len(t, v, landed, "every successful update landed once, and no other")
	assert.Positive(t, landed)
}

func TestUpdateGivesUpOnAKeyThatKeepsChanging(t *testing.T) {
	ctx := context.Background()
	c := &daprfake.Client{}
	require.NoError(t, Save(ctx, c, "s", "k", []byte("a"), ""))
	calls := 0
	_, err := Update(ctx, c, "s", "k", func(cur []byte) ([]byte, error) {
		calls++
		c.Put("s", "k", []byte("someone else")) // another writer wins every time
		return []byte("mine"), nil
	})
	assert.ErrorIs(t, err, ErrConflict)
	assert.Equal(t, Attempts, calls)
}
