// Package amounts keeps one whole-number amount per id in a Dapr state store (the
// stock of a product, the balance of a customer's account), lets an operation
// change an amount exactly once however often it is retried, and serves the
// amounts over HTTP: GET answers one, PUT sets it.
//
// Exactly once works by marks. An operation changes an id's amount by
// compare-and-swap and writes, in the same key, a mark naming itself
// ("reserve/<orderID>"), so that a retry of the operation finds the mark and does
// not apply the change again. Once the operation's outcome is recorded elsewhere
// the service forgets the mark (Forget), and the mark goes with the next change
// of that id. Setting an amount over HTTP keeps the marks, so that the
// operations in flight still are not applied twice.
//
// Each service keeps its own record and body types, so that what it stores and
// what its API answers keep the service's JSON field names; its Kind tells this
// package where the id, the amount and the marks are in them.
package amounts

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/ids"
	"github.com/daprshop/daprshop/internal/keylock"
	"github.com/daprshop/daprshop/internal/statestore"
)

// Kind is how one service keeps and serves its amounts. R is the record at each
// id's key; without its marks it is also what GET and PUT answer, so the marks'
// field must be tagged omitempty. B is the body of PUT.
type Kind[R, B any] struct {
	// Key returns the state key of id's record.
	Key func(id string) string
	// Fields returns where a record keeps its id, its amount and its marks: the
	// change each operation in flight made, or took, by operation.
	Fields func(r *R) (id *string, amount *int64, marks *map[string]int64)
	// Requested returns the amount in a PUT body, nil when it is missing or null.
	Requested func(b B) *int64

	// PathVar is the route variable that holds the id, and IDName what messages
	// call the id: "productID" and "product id".
	PathVar, IDName string
	// Field is the name of the amount in a PUT body and Means what it holds, for
	// the messages about it; Max is the largest amount PUT accepts.
	Field, Means string
	Max          int64

	// NotFound is the message, formatted with the id, of a GET of an id that was
	// never set; Conflict is that of a PUT that kept losing to other writers.
	NotFound, Conflict string
	// Missing is the error Change returns for an id that was never set.
	Missing error
}

// check returns nil when a PUT body's amount is there and within 0 to Max, and
// otherwise the client's error.
func (k *Kind[R, B]) check(amount *int64) error {
	switch {
	case amount == nil:
		return httpx.Errorf(httpx.EInvalid, "%s is required: %s", k.Field, k.Means)
	case *amount < 0:
		return httpx.Errorf(httpx.EInvalid, "%s must be zero or more, not %d", k.Field, *amount)
	case *amount > k.Max:
		return httpx.Errorf(httpx.EInvalid, "%s %d is over the limit of %d", k.Field, *amount, k.Max)
	}
	return nil
}

// MaxForgotten bounds how many ids may have forgotten marks waiting for their
// next change; past it, Forget removes the marks at once.
const MaxForgotten = 10_000

// Store keeps the amounts of one Kind in a state store.
type Store[R, B any] struct {
	kind  Kind[R, B]
	dapr  statestore.Client
	store string
	locks *keylock.Locks

	mu sync.Mutex
	// forgotten holds, by id, the operations whose outcomes are recorded and
	// whose marks the next change of the id removes.
	forgotten map[string][]string
}

// New returns the Store of kind's amounts in the state store named store. locks
// must be the ones the service takes for its own work on the same keys, so that
// a PUT and an operation of this instance never race each other for a key.
func New[R, B any](kind Kind[R, B], dapr statestore.Client, store string, locks *keylock.Locks) *Store[R, B] {
	return &Store[R, B]{kind: kind, dapr: dapr, store: store, locks: locks, forgotten: map[string][]string{}}
}

// view returns the record that GET and PUT answer: id and amount, no marks.
func (s *Store[R, B]) view(id string, amount int64) R {
	var v R
	vid, vamount, _ := s.kind.Fields(&v)
	*vid, *vamount = id, amount
	return v
}

// Get returns the amount of id, as GET answers it, and whether it was ever set.
func (s *Store[R, B]) Get(ctx context.Context, id string) (R, bool, error) {
	rec, found, err := statestore.GetJSON[R](ctx, s.dapr, s.store, s.kind.Key(id))
	if err != nil || !found {
		var zero R
		return zero, false, err
	}
	_, amount, _ := s.kind.Fields(&rec)
	return s.view(id, *amount), true, nil
}

// Set sets the amount of id, and creates its record if it has none. The marks of
// operations in flight are kept, so that they still are not applied twice.
func (s *Store[R, B]) Set(ctx context.Context, id string, amount int64) error {
	key := s.kind.Key(id)
	unlock := s.locks.Lock(key)
	defer unlock()
	err := statestore.UpdateJSON(ctx, s.dapr, s.store, key, func(rec *R, found bool) (bool, error) {
		rid, ramount, _ := s.kind.Fields(rec)
		if !found {
			*rid = id
		}
		*ramount = amount
		return true, nil
	})
	if errors.Is(err, statestore.ErrConflict) {
		return httpx.Errorf(httpx.EConflict, s.kind.Conflict, id)
	}
	return err
}

// Change applies fn to the record of id by compare-and-swap; fn may write to the
// marks without making them, and reports whether it changed anything. The same
// write removes the marks Forget was given for id. An id that was never set is
// the Kind's Missing error. The caller holds the key's lock.
func (s *Store[R, B]) Change(ctx context.Context, id string, fn func(rec *R) (bool, error)) error {
	return s.change(ctx, id, nil, fn)
}

// ChangeFrom is Change starting from first, the record as the caller has just
// read it, instead of from a read of its own.
func (s *Store[R, B]) ChangeFrom(ctx context.Context, id string, first statestore.Read, fn func(rec *R) (bool, error)) error {
	return s.change(ctx, id, &first, fn)
}

func (s *Store[R, B]) change(ctx context.Context, id string, first *statestore.Read, fn func(rec *R) (bool, error)) error {
	s.mu.Lock()
	forgotten := slices.Clone(s.forgotten[id])
	s.mu.Unlock()
	wrote := false
	update := func(rec *R, found bool) (bool, error) {
		if !found {
			return false, s.kind.Missing
		}
		_, _, marks := s.kind.Fields(rec)
		if *marks == nil {
			*marks = map[string]int64{}
		}
		changed, err := fn(rec)
		if err != nil || !changed {
			wrote = false
			return false, err
		}
		for _, op := range forgotten {
			delete(*marks, op)
		}
		wrote = true
		return true, nil
	}
	var err error
	if first != nil {
		err = statestore.UpdateJSONFrom(ctx, s.dapr, s.store, s.kind.Key(id), *first, update)
	} else {
		err = statestore.UpdateJSON(ctx, s.dapr, s.store, s.kind.Key(id), update)
	}
	if err == nil && wrote && len(forgotten) > 0 {
		s.mu.Lock()
		// Forget only appends, so what was removed is the list's head.
		if cur := s.forgotten[id]; len(cur) > len(forgotten) {
			s.forgotten[id] = cur[len(forgotten):]
		} else {
			delete(s.forgotten, id)
		}
		s.mu.Unlock()
	}
	return err
}

// Forget removes the marks of ops from id's record, once the outcomes of those
// operations are recorded: not with a read and a write of their own, but in the
// next write that Change makes to id, which for an amount that changes often is
// the next operation's. A mark that waits is harmless, since the recorded outcome
// answers any retry of its operation before the mark is consulted; if this
// instance stops first, the mark stays in the record for good, as a mark whose
// removal failed would. Past MaxForgotten waiting ids, Forget removes the marks
// at once. The caller holds the key's lock.
func (s *Store[R, B]) Forget(ctx context.Context, id string, ops ...string) error {
	s.mu.Lock()
	if _, waiting := s.forgotten[id]; waiting || len(s.forgotten) < MaxForgotten {
		s.forgotten[id] = append(s.forgotten[id], ops...)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	return statestore.UpdateJSON(ctx, s.dapr, s.store, s.kind.Key(id), func(rec *R, found bool) (bool, error) {
		_, _, marks := s.kind.Fields(rec)
		n := len(*marks)
		for _, op := range ops {
			delete(*marks, op)
		}
		return found && len(*marks) != n, nil
	})
}

// HandleGet answers GET on the amount of the id in the path.
func (s *Store[R, B]) HandleGet(log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := ids.FromPath(r, s.kind.PathVar, s.kind.IDName)
		var (
			v     R
			found bool
		)
		if err == nil {
			v, found, err = s.Get(r.Context(), id)
		}
		if err == nil && !found {
			err = httpx.Errorf(httpx.ENotFound, s.kind.NotFound, id)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	}
}

// HandlePut answers PUT on the amount of the id in the path: it sets the amount
// the body holds and answers as GET then would.
func (s *Store[R, B]) HandlePut(log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := ids.FromPath(r, s.kind.PathVar, s.kind.IDName)
		var body B
		if err == nil {
			err = httpx.DecodeJSON(w, r, &body, httpx.DefaultMaxBody)
		}
		amount := s.kind.Requested(body)
		if err == nil {
			err = s.kind.check(amount)
		}
		if err == nil {
			err = s.Set(r.Context(), id, *amount)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, s.view(id, *amount))
	}
}
