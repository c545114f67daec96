package statestore

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/daprshop/daprshop/internal/daprfake"
)

type counter struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func TestGetJSON(t *testing.T) {
	ctx := context.Background()
	c := &daprfake.Client{}
	c.Put("s", "k", counter{Name: "a", N: 2})
	c.Put("s", "bad", []byte("{"))

	v, found, err := GetJSON[counter](ctx, c, "s", "k")
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, counter{Name: "a", N: 2}, v)

	v, found, err = GetJSON[counter](ctx, c, "s", "absent")
	require.NoError(t, err)
	assert.False(t, found)
	assert.Zero(t, v)

	_, found, err = GetJSON[counter](ctx, c, "s", "bad")
	assert.ErrorContains(t, err, "decode bad")
	assert.False(t, found)

	c.Hook = func(string, string) error { return errors.New("down") }
	_, _, err = GetJSON[counter](ctx, c, "s", "k")
	assert.ErrorContains(t, err, "read k: down")
}

func TestGetBulkJSON(t *testing.T) {
	ctx := context.Background()
	c := &daprfake.Client{}
	c.Put("s", "a", counter{Name: "a", N: 1})
	c.Put("s", "b", counter{Name: "b", N: 2})
	c.Put("s", "bad", []byte("{"))

	got, err := GetBulkJSON[counter](ctx, c, "s", "a", "absent", "b")
	require.NoError(t, err)
	assert.Equal(t, map[string]counter{"a": {Name: "a", N: 1}, "b": {Name: "b", N: 2}}, got, "absent keys are left out")
	assert.Equal(t, 1, c.Reads().Bulk, "one read")

	_, err = GetBulkJSON[counter](ctx, c, "s", "a", "bad")
	assert.ErrorContains(t, err, "decode bad")

	c.Hook = func(string, string) error { return errors.New("down") }
	_, err = GetBulkJSON[counter](ctx, c, "s", "a")
	assert.ErrorContains(t, err, "read a: down")
}

func TestUpdateJSON(t *testing.T) {
	ctx := context.Background()
	increment := func(v *counter, found bool) (bool, error) {
		if !found {
			v.Name = "new"
		}
		v.N++
		return true, nil
	}
	tests := []struct {
		name    string
		setup   func(c *daprfake.Client)
		change  func(v *counter, found bool) (bool, error)
		want    string // the value afterwards, "" for none
		wantErr string
	}{
		{name: "absent key is created", change: increment, want: `{"name":"new","n":1}`},
		{name: "existing key is changed", setup: func(c *daprfake.Client) { c.Put("s", "k", counter{Name: "a", N: 1}) },
			change: increment, want: `{"name":"a","n":2}`},
		{name: "nothing to write", setup: func(c *daprfake.Client) { c.Put("s", "k", counter{Name: "a", N: 1}) },
			change: func(*counter, bool) (bool, error) { return false, nil }, want: `{"name":"a","n":1}`},
		{name: "change refuses", change: func(*counter, bool) (bool, error) { return true, errors.New("invalid") }, wantErr: "invalid"},
		{name: "corrupt value", setup: func(c *daprfake.Client) { c.Put("s", "k", []byte("[")) }, change: increment,
			want: "[", wantErr: "decode k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &daprfake.Client{}
			if tt.setup != nil {
				tt.setup(c)
			}
			err := UpdateJSON(ctx, c, "s", "k", tt.change)
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
			v, _ := c.Value("s", "k")
			assert.Equal(t, tt.want, string(v))
		})
	}
}

func TestUpdateJSONFrom(t *testing.T) {
	ctx := context.Background()
	c := &daprfake.Client{}
	c.Put("s", "k", counter{Name: "a", N: 1})
	item, err := c.GetState(ctx, "s", "k", nil)
	require.NoError(t, err)
	first := Read{Value: item.Value, ETag: item.Etag}
	increment := func(v *counter, _ bool) (bool, error) {
		v.N++
		return true, nil
	}
	reads := 0
	c.Hook = func(method, _ string) error {
		if method == "GetState" {
			reads++
		}
		return nil
	}
	require.NoError(t, UpdateJSONFrom(ctx, c, "s", "k", first, increment))
	assert.Equal(t, 0, reads, "the first attempt starts from the caller's read")
	v, _ := c.Value("s", "k")
	assert.JSONEq(t, `{"name":"a","n":2}`, string(v))

	// first is stale now: the write loses, and the change is made again on a
	// fresh read rather than overwriting.
	require.NoError(t, UpdateJSONFrom(ctx, c, "s", "k", first, increment))
	assert.Equal(t, 2, reads, "the conflict's check and the fresh read")
	v, _ = c.Value("s", "k")
	assert.JSONEq(t, `{"name":"a","n":3}`, string(v))
}

func TestCreateJSON(t *testing.T) {
	ctx := context.Background()
	c := &daprfake.Client{}

	got, err := CreateJSON(ctx, c, "s", "k", counter{Name: "first"})
	require.NoError(t, err)
	assert.Equal(t, counter{Name: "first"}, got)

	got, err = CreateJSON(ctx, c, "s", "k", counter{Name: "second"})
	require.NoError(t, err)
	assert.Equal(t, counter{Name: "first"}, got, "the first value stands")
	v, _ := c.Value("s", "k")
	assert.JSONEq(t, `{"name":"first","n":0}`, string(v))

	c.Hook = func(method, _ string) error {
		if method == "SaveState" {
			return errors.New("down")
		}
		return nil
	}
	_, err = CreateJSON(ctx, c, "s", "other", counter{Name: "x"})
	assert.ErrorContains(t, err, "down")
	assert.NotErrorIs(t, err, ErrConflict)
}
