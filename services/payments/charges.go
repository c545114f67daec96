package main

// How a charge stays exactly once on Redis.
//
// A charge changes two keys, the account and the charge record. A Dapr state
// transaction on Redis cannot make that atomic: when the account's ETag is stale
// (another instance charged the same customer), the charge record would still be
// written, and a retry would find a charge recorded that never debited anything.
//
// So the account is debited on its own, by compare-and-swap, with a mark naming
// the charge in the same key; a retry that finds the mark does not debit again.
// Then the outcome is recorded (the charge key, create-if-absent) and published,
// and the mark goes with the account's next change. A redelivered event finds
// the recorded outcome and publishes it again, changing nothing.
//
// A cancelled order's charge is refunded the same way: the account is credited
// by compare-and-swap with a mark naming the refund, then the record says
// refunded. A cancellation that comes before any charge records the order as
// cancelled, so that a late reservation finds the record and charges nothing.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/ids"
	"github.com/daprshop/daprshop/internal/pubsub"
	"github.com/daprshop/daprshop/internal/statestore"
)

// Statuses of a charge.
const (
	statusSucceeded = "succeeded"
	statusFailed    = "failed"
	statusRefunded  = "refunded"  // succeeded, and given back when the order was cancelled
	statusCancelled = "cancelled" // the order was cancelled before any charge
)

func chargeKey(orderID string) string { return "charge-" + orderID }
func chargeOp(orderID string) string  { return "charge/" + orderID }
func refundOp(orderID string) string  { return "refund/" + orderID }

// charge is the recorded outcome of charging an order.
type charge struct {
	OrderID     string `json:"orderId"`
	CustomerID  string `json:"customerId"`
	AmountCents int64  `json:"amountCents"`
	Currency    string `json:"currency"`
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
}

// errDeclined is a charge the account cannot pay: there is no account, or too
// little on it.
var errDeclined = errors.New("payment declined")

// onStockReserved processes a StockReserved event.
func onStockReserved(b *bank) func(context.Context, events.Envelope) error {
	return func(ctx context.Context, e events.Envelope) error {
		var s events.Stock
		if err := e.DecodeData(&s); err != nil {
			return err
		}
		if err := ids.Check("orderId", s.OrderID); err != nil {
			return pubsub.Poison("%v", err)
		}
		if err := ids.Check("customerId", s.CustomerID); err != nil {
			return pubsub.Poison("order %s: %v", s.OrderID, err)
		}
		if s.TotalCents <= 0 || s.TotalCents > maxBalanceCents {
			return pubsub.Poison("order %s: totalCents %d is not between 1 and %d", s.OrderID, s.TotalCents, int64(maxBalanceCents))
		}
		return b.charge(ctx, s)
	}
}

// charge charges the order's total to its customer once, records the outcome and
// publishes it.
func (b *bank) charge(ctx context.Context, s events.Stock) error {
	unlock := b.locks.Lock(chargeKey(s.OrderID), accountKey(s.CustomerID))
	defer unlock()

	read, err := statestore.GetBulk(ctx, b.dapr, b.store, chargeKey(s.OrderID), accountKey(s.CustomerID))
	if err != nil {
		return err
	}
	rec, found, err := statestore.DecodeJSON[charge](chargeKey(s.OrderID), read[chargeKey(s.OrderID)])
	if err != nil {
		return err
	}
	switch {
	case !found:
		if rec, err = b.decide(ctx, s, read[accountKey(s.CustomerID)]); err != nil {
			return err
		}
	case rec.Status == statusFailed || rec.Status == statusCancelled:
		// The record that stands says nothing was charged, but an earlier
		// attempt may have debited the account and been cut short (a failed
		// write, a crash) before it recorded the charge or gave the debit back,
		// while the order was recorded otherwise. The debit goes back now;
		// without its mark, nothing does.
		acct := read[accountKey(s.CustomerID)]
		if err := b.refund(ctx, s.CustomerID, chargeOp(s.OrderID), &acct); err != nil {
			return err
		}
	}
	return b.publish(ctx, rec)
}

// decide debits the account, starting from it as read, or declines the charge,
// and records which.
func (b *bank) decide(ctx context.Context, s events.Stock, acct statestore.Read) (charge, error) {
	op := chargeOp(s.OrderID)
	rec := charge{OrderID: s.OrderID, CustomerID: s.CustomerID, AmountCents: s.TotalCents,
		Currency: s.Currency, Status: statusSucceeded}
	err := b.accounts.ChangeFrom(ctx, s.CustomerID, acct, func(a *account) (bool, error) {
		if _, done := a.Pending[op]; done {
			return false, nil
		}
		if a.BalanceCents < s.TotalCents {
			return false, errDeclined
		}
		a.BalanceCents -= s.TotalCents
		a.Pending[op] = s.TotalCents
		return true, nil
	})
	switch {
	case errors.Is(err, errDeclined):
		rec.Status, rec.Reason = statusFailed, events.ReasonPaymentDeclined
	case err != nil:
		return rec, err
	}
	debited := rec.Status == statusSucceeded
	if rec, err = b.record(ctx, rec); err != nil {
		return rec, err
	}
	switch {
	case rec.Status == statusSucceeded:
		b.forget(ctx, s.CustomerID, op)
	case debited:
		// Another instance recorded a failure for this order first; the record
		// stands, so the debit is given back.
		if err := b.refund(ctx, s.CustomerID, op, nil); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// refund reverts the debit marked op, if there is one, and its mark with it, so
// that a retry reverts nothing again. from, when not nil, is the account as just
// read; a refund that finds no mark writes nothing.
func (b *bank) refund(ctx context.Context, customerID, op string, from *statestore.Read) error {
	giveBack := func(a *account) (bool, error) {
		amount, debited := a.Pending[op]
		if !debited {
			return false, nil
		}
		a.BalanceCents += amount
		delete(a.Pending, op)
		return true, nil
	}
	var err error
	if from != nil {
		err = b.accounts.ChangeFrom(ctx, customerID, *from, giveBack)
	} else {
		err = b.accounts.Change(ctx, customerID, giveBack)
	}
	if errors.Is(err, errDeclined) {
		return nil // no account, so nothing was debited
	}
	return err
}

// forget lets the mark of a recorded charge go: it goes with the account's next
// change (amounts.Store.Forget). A mark left behind is harmless, since the record
// now answers any retry, so a failure is only logged.
func (b *bank) forget(ctx context.Context, customerID, op string) {
	if err := b.accounts.Forget(ctx, customerID, op); err != nil {
		b.log.WarnContext(ctx, "cannot remove the mark of a recorded charge", "op", op, "customerId", customerID, "err", err)
	}
}

// record writes rec if the order has no charge recorded yet, and returns the
// charge that stands: rec, or the one another instance recorded first.
func (b *bank) record(ctx context.Context, rec charge) (charge, error) {
	return statestore.CreateJSON(ctx, b.dapr, b.store, chargeKey(rec.OrderID), rec)
}

// publish publishes the recorded outcome of a charge.
func (b *bank) publish(ctx context.Context, rec charge) error {
	typ := events.PaymentSucceeded
	if rec.Status != statusSucceeded {
		typ = events.PaymentFailed
	}
	return pubsub.Publish(ctx, b.dapr, events.TopicPayments, typ, rec.OrderID, events.Payment{
		OrderID:     rec.OrderID,
		CustomerID:  rec.CustomerID,
		AmountCents: rec.AmountCents,
		Currency:    rec.Currency,
		Reason:      rec.Reason,
	})
}

// onOrderCancelled processes an OrderCancelled event.
func onOrderCancelled(b *bank) func(context.Context, events.Envelope) error {
	return func(ctx context.Context, e events.Envelope) error {
		o, err := pubsub.OrderOf(e)
		if err != nil {
			return err
		}
		return b.cancel(ctx, o)
	}
}

// cancel gives back the charge of the cancelled order o, once, or records the
// order as cancelled when nothing was charged yet. Nothing is published: the
// order is final already, and a refund is the customer's balance.
func (b *bank) cancel(ctx context.Context, o events.Order) error {
	unlock := b.locks.Lock(chargeKey(o.OrderID), accountKey(o.CustomerID))
	defer unlock()

	rec, found, err := statestore.GetJSON[charge](ctx, b.dapr, b.store, chargeKey(o.OrderID))
	if err != nil {
		return err
	}
	if !found {
		// The record that stands may be a charge another instance just made.
		rec, err = b.record(ctx, charge{OrderID: o.OrderID, CustomerID: o.CustomerID,
			AmountCents: o.TotalCents, Currency: o.Currency, Status: statusCancelled, Reason: o.Reason})
		if err != nil {
			return err
		}
	}
	if rec.Status != statusSucceeded {
		return nil
	}
	op := refundOp(o.OrderID)
	err = b.accounts.Change(ctx, rec.CustomerID, func(a *account) (bool, error) {
		if _, done := a.Pending[op]; done {
			return false, nil
		}
		a.BalanceCents += rec.AmountCents
		a.Pending[op] = rec.AmountCents
		return true, nil
	})
	if err != nil {
		return err
	}
	err = statestore.UpdateJSON(ctx, b.dapr, b.store, chargeKey(o.OrderID), func(c *charge, _ bool) (bool, error) {
		if c.Status != statusSucceeded {
			return false, nil
		}
		c.Status = statusRefunded
		return true, nil
	})
	if err != nil {
		return err
	}
	b.forget(ctx, rec.CustomerID, op)
	b.log.InfoContext(ctx, "charge refunded", "orderId", o.OrderID, "customerId", rec.CustomerID, "amountCents", rec.AmountCents)
	return nil
}

// maxLookup bounds GET /charges?orderIds=..., which the orders service's
// reconciler sends in batches.
const maxLookup = 100

// charges returns, in one bulk read, the recorded charges of orderIDs in their
// order, leaving out the orders that have none. A charge record holds nothing
// private to the bank, so it is the answer as it is.
func (b *bank) charges(ctx context.Context, orderIDs []string) ([]charge, error) {
	keys := make([]string, len(orderIDs))
	for i, id := range orderIDs {
		keys[i] = chargeKey(id)
	}
	recs, err := statestore.GetBulkJSON[charge](ctx, b.dapr, b.store, keys...)
	if err != nil {
		return nil, err
	}
	out := []charge{}
	for _, key := range keys {
		if rec, found := recs[key]; found {
			out = append(out, rec)
		}
	}
	return out, nil
}

// handleListCharges answers GET /charges?orderIds=a,b,c with the recorded
// charges of those orders, in the order asked, each once; an order the payments
// service has not recorded is left out, so the answer may be [].
func handleListCharges(log *slog.Logger, b *bank) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		orderIDs, err := ids.ParseList("orderIds", "order id", r.URL.Query()["orderIds"], maxLookup)
		var out []charge
		if err == nil {
			out, err = b.charges(r.Context(), orderIDs)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	}
}
