package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/ids"
	"github.com/daprshop/daprshop/internal/keylock"
	"github.com/daprshop/daprshop/internal/statestore"
)

// maxBalanceCents bounds a balance, so that refunds added to it can never
// overflow.
const maxBalanceCents = 1_000_000_000_000

func accountKey(customerID string) string { return "account-" + customerID }

// account is the value at a customer's account key.
type account struct {
	CustomerID   string `json:"customerId"`
	BalanceCents int64  `json:"balanceCents"`
	// Pending holds, by operation ("charge/<orderID>"), the amount a charge took
	// from the balance while the charge is not yet recorded. Because the mark is
	// written in the same key as the debit, a retried charge sees that it already
	// happened and never debits twice; once the charge is recorded the mark is
	// removed.
	Pending map[string]int64 `json:"pending,omitempty"`
}

// accountView is what GET and PUT /accounts/{customerID} answer.
type accountView struct {
	CustomerID   string `json:"customerId"`
	BalanceCents int64  `json:"balanceCents"`
}

// accountBody is the body of PUT /accounts/{customerID}. BalanceCents is a pointer
// so that a missing or null value is refused rather than read as zero.
type accountBody struct {
	BalanceCents *int64 `json:"balanceCents"`
}

func decodeAccount(data []byte) (account, error) {
	var a account
	if err := json.Unmarshal(data, &a); err != nil {
		return a, fmt.Errorf("decode account: %w", err)
	}
	return a, nil
}

// bank keeps accounts and charges in the state store.
type bank struct {
	log   *slog.Logger
	dapr  sidecar
	store string
	// locks serialises this instance's work on the same account and charge keys,
	// so that its writes never lose an ETag race to each other; the ETags still
	// guard against other instances.
	locks *keylock.Locks
}

// account returns the account of customerID, and whether it exists.
func (b *bank) account(ctx context.Context, customerID string) (accountView, bool, error) {
	item, err := b.dapr.GetState(ctx, b.store, accountKey(customerID), nil)
	if err != nil {
		return accountView{}, false, fmt.Errorf("read account of %s: %w", customerID, err)
	}
	if len(item.Value) == 0 {
		return accountView{}, false, nil
	}
	a, err := decodeAccount(item.Value)
	if err != nil {
		return accountView{}, false, err
	}
	return accountView{CustomerID: customerID, BalanceCents: a.BalanceCents}, true, nil
}

// setBalance creates the account of customerID or sets its balance. Marks of
// charges in flight are kept, so that they still are not debited twice.
func (b *bank) setBalance(ctx context.Context, customerID string, balance int64) error {
	unlock := b.locks.Lock(accountKey(customerID))
	defer unlock()
	_, err := statestore.Update(ctx, b.dapr, b.store, accountKey(customerID), func(cur []byte) ([]byte, error) {
		a := account{CustomerID: customerID}
		if cur != nil {
			var err error
			if a, err = decodeAccount(cur); err != nil {
				return nil, err
			}
		}
		a.BalanceCents = balance
		return json.Marshal(a)
	})
	if errors.Is(err, statestore.ErrConflict) {
		return httpx.Errorf(httpx.EConflict, "the account of %q is being changed by another request; try again", customerID)
	}
	return err
}

func pathCustomerID(r *http.Request) (string, error) {
	id := mux.Vars(r)["customerID"]
	if err := ids.Check("customer id", id); err != nil {
		return "", httpx.Errorf(httpx.EInvalid, "%v", err)
	}
	return id, nil
}

// handleGetAccount answers GET /accounts/{customerID}.
func handleGetAccount(log *slog.Logger, b *bank) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathCustomerID(r)
		var (
			v     accountView
			found bool
		)
		if err == nil {
			v, found, err = b.account(r.Context(), id)
		}
		if err == nil && !found {
			err = httpx.Errorf(httpx.ENotFound, "customer %q has no account", id)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	}
}

// handlePutAccount answers PUT /accounts/{customerID} {"balanceCents": n}: it
// opens the account or sets its balance.
func handlePutAccount(log *slog.Logger, b *bank) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathCustomerID(r)
		var body accountBody
		if err == nil {
			err = httpx.DecodeJSON(w, r, &body, httpx.DefaultMaxBody)
		}
		if err == nil {
			switch {
			case body.BalanceCents == nil:
				err = httpx.Errorf(httpx.EInvalid, "balanceCents is required: the balance in cents")
			case *body.BalanceCents < 0:
				err = httpx.Errorf(httpx.EInvalid, "balanceCents must be zero or more, not %d", *body.BalanceCents)
			case *body.BalanceCents > maxBalanceCents:
				err = httpx.Errorf(httpx.EInvalid, "balanceCents %d is over the limit of %d", *body.BalanceCents, int64(maxBalanceCents))
			}
		}
		if err == nil {
			err = b.setBalance(r.Context(), id, *body.BalanceCents)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, accountView{CustomerID: id, BalanceCents: *body.BalanceCents})
	}
}
