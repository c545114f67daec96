package main

import (
	"log/slog"

	"github.com/daprshop/daprshop/internal/amounts"
	"github.com/daprshop/daprshop/internal/keylock"
)

// maxBalanceCents bounds a balance, so that refunds added to it can never
// overflow.
const maxBalanceCents = 1_000_000_000_000

func accountKey(customerID string) string { return "account-" + customerID }

// account is the value at a customer's account key and, without its marks, the
// answer of GET and PUT /accounts/{customerID}.
type account struct {
	CustomerID   string `json:"customerId"`
	BalanceCents int64  `json:"balanceCents"`
	// Pending holds, by operation ("charge/<orderID>"), the amount a charge took
	// from the balance while the charge is not yet recorded. Because the mark is
	// written in the same key as the debit, a retried charge sees that it already
	// happened and never debits twice; once the charge is recorded the mark goes
	// with the next change of the balance.
	Pending map[string]int64 `json:"pending,omitempty"`
}

// accountBody is the body of PUT /accounts/{customerID}. BalanceCents is a pointer
// so that a missing or null value is refused rather than read as zero.
type accountBody struct {
	BalanceCents *int64 `json:"balanceCents"`
}

// accountKind is how the payments service keeps and serves the customers'
// accounts.
var accountKind = amounts.Kind[account, accountBody]{
	Key: accountKey,
	Fields: func(a *account) (*string, *int64, *map[string]int64) {
		return &a.CustomerID, &a.BalanceCents, &a.Pending
	},
	Requested: func(b accountBody) *int64 { return b.BalanceCents },
	PathVar:   "customerID",
	IDName:    "customer id",
	Field:     "balanceCents",
	Means:     "the balance in cents",
	Max:       maxBalanceCents,
	NotFound:  "customer %q has no account",
	Conflict:  "the account of %q is being changed by another request; try again",
	Missing:   errDeclined,
}

// bank keeps accounts and charges in the state store.
type bank struct {
	log   *slog.Logger
	dapr  sidecar
	store string
	// locks serialises this instance's work on the same account and charge keys,
	// so that its writes never lose an ETag race to each other; the ETags still
	// guard against other instances.
	locks    *keylock.Locks
	accounts *amounts.Store[account, accountBody]
}

func newBank(log *slog.Logger, dapr sidecar, store string, locks *keylock.Locks) *bank {
	return &bank{log: log, dapr: dapr, store: store, locks: locks,
		accounts: amounts.New(accountKind, dapr, store, locks)}
}
