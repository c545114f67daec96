package main

// How a reservation stays exactly once on Redis.
//
// Reserving an order changes several stock keys. A Dapr state transaction on
// Redis cannot make that atomic: it runs one script per operation inside
// MULTI/EXEC, so when one operation's ETag is stale the others still apply. The
// locks make that impossible within one instance, but two instances handling
// orders for the same product can still race, and a transaction that half
// applied would leave a reservation recorded for stock that was never taken.
//
// So each stock key is changed on its own, by compare-and-swap, and the change
// carries a mark naming the operation ("reserve/<orderID>") in the same key.
// Retrying an operation skips every key that already bears its mark, so a change
// is never applied twice, however a previous attempt ended. Only when every line
// is held is the outcome recorded (the reservation key, create-if-absent); then
// the outcome is published, and the marks go with the next change of each
// stock. A redelivered event finds the recorded outcome and publishes it again,
// changing nothing.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/ids"
	"github.com/daprshop/daprshop/internal/pubsub"
	"github.com/daprshop/daprshop/internal/statestore"
)

// Statuses of a reservation.
const (
	statusReserved = "reserved" // every line is held
	statusRejected = "rejected" // nothing is held, for Reason
	statusReleased = "released" // the order was cancelled and its lines given back
	// statusCancelled marks an order cancelled before it was ever reserved, so
	// that its placement, arriving late, reserves nothing.
	statusCancelled = "cancelled"
)

// Limits of one order.
const (
	maxLines    = 100
	maxQuantity = 1_000_000_000
)

func reservationKey(orderID string) string { return "reservation-" + orderID }
func reserveOp(orderID string) string      { return "reserve/" + orderID }
func releaseOp(orderID string) string      { return "release/" + orderID }

// line is one product and quantity of a reservation.
type line struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
}

// reservation is the recorded outcome of an order at the inventory.
type reservation struct {
	OrderID    string `json:"orderId"`
	CustomerID string `json:"customerId"`
	TotalCents int64  `json:"totalCents"`
	Currency   string `json:"currency"`
	Lines      []line `json:"lines"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
}

var (
	errOutOfStock     = errors.New("out of stock")
	errUnknownProduct = errors.New("unknown product")
)

// onOrderPlaced processes an OrderPlaced event.
func onOrderPlaced(led *ledger) func(context.Context, events.Envelope) error {
	return func(ctx context.Context, e events.Envelope) error {
		var o events.Order
		if err := e.DecodeData(&o); err != nil {
			return err
		}
		lines, err := placedLines(o)
		if err != nil {
			return err
		}
		return led.reserve(ctx, o, lines)
	}
}

// onOrderCancelled processes an OrderCancelled event.
func onOrderCancelled(led *ledger) func(context.Context, events.Envelope) error {
	return func(ctx context.Context, e events.Envelope) error {
		var o events.Order
		if err := e.DecodeData(&o); err != nil {
			return err
		}
		if err := ids.Check("orderId", o.OrderID); err != nil {
			return pubsub.Poison("%v", err)
		}
		productIDs := make([]string, 0, len(o.Lines))
		for i, ln := range o.Lines {
			if err := ids.Check("productId", ln.ProductID); err != nil {
				return pubsub.Poison("line %d: %v", i+1, err)
			}
			productIDs = append(productIDs, ln.ProductID)
		}
		return led.release(ctx, o, productIDs)
	}
}

// placedLines checks a placed order and returns its lines, one per product,
// sorted by product id. An order that breaks the contract is poison.
func placedLines(o events.Order) ([]line, error) {
	if err := ids.Check("orderId", o.OrderID); err != nil {
		return nil, pubsub.Poison("%v", err)
	}
	if err := ids.Check("customerId", o.CustomerID); err != nil {
		return nil, pubsub.Poison("order %s: %v", o.OrderID, err)
	}
	if len(o.Lines) == 0 || len(o.Lines) > maxLines {
		return nil, pubsub.Poison("order %s has %d lines; 1 to %d are allowed", o.OrderID, len(o.Lines), maxLines)
	}
	if o.TotalCents <= 0 {
		return nil, pubsub.Poison("order %s: totalCents %d is not positive", o.OrderID, o.TotalCents)
	}
	byProduct := map[string]int64{}
	for i, ln := range o.Lines {
		if err := ids.Check("productId", ln.ProductID); err != nil {
			return nil, pubsub.Poison("order %s, line %d: %v", o.OrderID, i+1, err)
		}
		if ln.Quantity <= 0 || ln.Quantity > maxQuantity {
			return nil, pubsub.Poison("order %s, line %d: quantity %d is not between 1 and %d", o.OrderID, i+1, ln.Quantity, maxQuantity)
		}
		byProduct[ln.ProductID] += ln.Quantity
	}
	lines := make([]line, 0, len(byProduct))
	for id, q := range byProduct {
		lines = append(lines, line{ProductID: id, Quantity: q})
	}
	slices.SortFunc(lines, func(a, b line) int { return strings.Compare(a.ProductID, b.ProductID) })
	return lines, nil
}

// lockKeys returns the keys an operation on orderID's reservation and products
// locks.
func lockKeys(orderID string, productIDs []string) []string {
	keys := []string{reservationKey(orderID)}
	for _, id := range productIDs {
		keys = append(keys, stockKey(id))
	}
	return keys
}

func productIDsOf(lines []line) []string {
	out := make([]string, len(lines))
	for i, ln := range lines {
		out[i] = ln.ProductID
	}
	return out
}

// reserve holds every line of the order, or none, records the outcome and
// publishes it.
func (l *ledger) reserve(ctx context.Context, o events.Order, lines []line) error {
	unlock := l.locks.Lock(lockKeys(o.OrderID, productIDsOf(lines))...)
	defer unlock()

	rec, found, stock, err := l.readPlacement(ctx, o.OrderID, lines)
	if err != nil {
		return err
	}
	switch {
	case !found:
		if rec, err = l.decide(ctx, o, lines, stock); err != nil {
			return err
		}
	case rec.Status == statusRejected || rec.Status == statusCancelled:
		// The record that stands holds nothing, but an earlier attempt may have
		// held lines and been cut short (a failure, a crash) before it recorded
		// or gave them back, while another attempt recorded this. They go back
		// now; a line without the mark gives nothing.
		if err := l.undo(ctx, reserveOp(o.OrderID), lines, stock); err != nil {
			return err
		}
	}
	return l.publishPlaced(ctx, rec)
}

// readPlacement reads, in one bulk read, the order's recorded reservation, if
// there is one, and the stock of its lines, by product id.
func (l *ledger) readPlacement(ctx context.Context, orderID string, lines []line) (reservation, bool, map[string]statestore.Read, error) {
	keys := []string{reservationKey(orderID)}
	for _, ln := range lines {
		keys = append(keys, stockKey(ln.ProductID))
	}
	read, err := statestore.GetBulk(ctx, l.dapr, l.store, keys...)
	if err != nil {
		return reservation{}, false, nil, err
	}
	rec, found, err := statestore.DecodeJSON[reservation](keys[0], read[keys[0]])
	if err != nil {
		return rec, false, nil, err
	}
	stock := make(map[string]statestore.Read, len(lines))
	for _, ln := range lines {
		stock[ln.ProductID] = read[stockKey(ln.ProductID)]
	}
	return rec, found, stock, nil
}

// decide reserves the order's lines, or rejects the order, and records which.
// stock is each line's stock as read just before.
func (l *ledger) decide(ctx context.Context, o events.Order, lines []line, stock map[string]statestore.Read) (reservation, error) {
	op := reserveOp(o.OrderID)
	rec := reservation{OrderID: o.OrderID, CustomerID: o.CustomerID, TotalCents: o.TotalCents,
		Currency: o.Currency, Lines: lines, Status: statusReserved}
	reason, err := check(op, lines, stock)
	if err != nil {
		return rec, err
	}
	if reason == "" {
		if reason, err = l.hold(ctx, op, lines, stock); err != nil {
			return rec, err
		}
	}
	if reason != "" {
		// Give back what this attempt, or an interrupted earlier one, held
		// before the rejection is recorded: once it is, nothing would.
		if err := l.undo(ctx, op, lines, nil); err != nil {
			return rec, err
		}
		rec.Status, rec.Reason = statusRejected, reason
	}
	held := rec.Status == statusReserved
	if rec, err = l.record(ctx, rec); err != nil {
		return rec, err
	}
	switch {
	case rec.Status == statusReserved:
		l.forget(ctx, []string{op}, lines)
	case held:
		// Another instance recorded a different outcome for this order first;
		// the record stands, so what this one held goes back.
		if err := l.undo(ctx, op, lines, nil); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// check returns why the order must be rejected, given each line's stock, or ""
// when every line can be held. A line this order already holds is fine.
func check(op string, lines []line, stock map[string]statestore.Read) (string, error) {
	records := make(map[string]stockRecord, len(lines))
	for _, ln := range lines {
		s, found, err := statestore.DecodeJSON[stockRecord](stockKey(ln.ProductID), stock[ln.ProductID])
		if err != nil {
			return "", err
		}
		if !found {
			return events.ReasonUnknownProduct, nil
		}
		records[ln.ProductID] = s
	}
	for _, ln := range lines {
		s := records[ln.ProductID]
		if _, held := s.Applied[op]; !held && s.Available < ln.Quantity {
			return events.ReasonOutOfStock, nil
		}
	}
	return "", nil
}

// hold takes each line's quantity from its stock, one key at a time, marking
// each key with op, starting from the stock as read. It returns a reason when a
// line can no longer be held, which happens only when another instance took the
// stock since it was read.
func (l *ledger) hold(ctx context.Context, op string, lines []line, stock map[string]statestore.Read) (string, error) {
	for _, ln := range lines {
		err := l.stock.ChangeFrom(ctx, ln.ProductID, stock[ln.ProductID], func(s *stockRecord) (bool, error) {
			if _, done := s.Applied[op]; done {
				return false, nil
			}
			if s.Available < ln.Quantity {
				return false, errOutOfStock
			}
			s.Available -= ln.Quantity
			s.Applied[op] = -ln.Quantity
			return true, nil
		})
		switch {
		case errors.Is(err, errOutOfStock):
			return events.ReasonOutOfStock, nil
		case errors.Is(err, errUnknownProduct):
			return events.ReasonUnknownProduct, nil
		case err != nil:
			return "", err
		}
	}
	return "", nil
}

// give adds each line's quantity back to its stock, marking each key with op.
func (l *ledger) give(ctx context.Context, op string, lines []line) error {
	for _, ln := range lines {
		err := l.stock.Change(ctx, ln.ProductID, func(s *stockRecord) (bool, error) {
			if _, done := s.Applied[op]; done {
				return false, nil
			}
			s.Available += ln.Quantity
			s.Applied[op] = ln.Quantity
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// undo reverts op on every line's stock where it is marked, and removes the mark.
// stock, when not nil, holds each line's stock as just read, where a line whose
// stock bears no mark is left without a write.
func (l *ledger) undo(ctx context.Context, op string, lines []line, stock map[string]statestore.Read) error {
	revert := func(s *stockRecord) (bool, error) {
		delta, done := s.Applied[op]
		if !done {
			return false, nil
		}
		s.Available -= delta
		delete(s.Applied, op)
		return true, nil
	}
	for _, ln := range lines {
		var err error
		if read, ok := stock[ln.ProductID]; ok {
			err = l.stock.ChangeFrom(ctx, ln.ProductID, read, revert)
		} else {
			err = l.stock.Change(ctx, ln.ProductID, revert)
		}
		if err != nil && !errors.Is(err, errUnknownProduct) {
			return err
		}
	}
	return nil
}

// forget lets the marks of ops go once their outcome is recorded: each goes with
// the next change of its stock (amounts.Store.Forget). A mark left behind is
// harmless, since the record now answers any retry, so a failure is only logged.
func (l *ledger) forget(ctx context.Context, ops []string, lines []line) {
	for _, ln := range lines {
		if err := l.stock.Forget(ctx, ln.ProductID, ops...); err != nil {
			l.log.WarnContext(ctx, "cannot remove the marks of a recorded operation", "ops", ops,
				"productId", ln.ProductID, "err", err)
		}
	}
}

// reservation returns the recorded reservation of orderID, and whether there is one.
func (l *ledger) reservation(ctx context.Context, orderID string) (reservation, bool, error) {
	return statestore.GetJSON[reservation](ctx, l.dapr, l.store, reservationKey(orderID))
}

// record writes rec if the order has no reservation yet, and returns the
// reservation that stands: rec, or the one another instance recorded first.
func (l *ledger) record(ctx context.Context, rec reservation) (reservation, error) {
	return statestore.CreateJSON(ctx, l.dapr, l.store, reservationKey(rec.OrderID), rec)
}

// release gives back the stock of a cancelled order's reservation, once.
func (l *ledger) release(ctx context.Context, o events.Order, productIDs []string) error {
	// The keys to lock are the recorded reservation's, which only a read can tell:
	// read it once unlocked to learn them, then again under the locks.
	peek, _, err := l.reservation(ctx, o.OrderID)
	if err != nil {
		return err
	}
	locked := slices.Concat(productIDs, productIDsOf(peek.Lines))
	unlock := l.locks.Lock(lockKeys(o.OrderID, locked)...)
	defer unlock()

	rec, found, err := l.reservation(ctx, o.OrderID)
	if err != nil {
		return err
	}
	if !found {
		// The cancellation overtook the placement. Record it, so that the
		// placement, when it comes, reserves nothing.
		rec, err = l.record(ctx, reservation{OrderID: o.OrderID, CustomerID: o.CustomerID,
			Lines: []line{}, Status: statusCancelled, Reason: o.Reason})
		if err == nil && rec.Status != statusCancelled {
			err = fmt.Errorf("order %s was reserved while its cancellation was recorded", o.OrderID)
		}
		return err
	}
	for _, id := range productIDsOf(rec.Lines) {
		if !slices.Contains(locked, id) {
			return fmt.Errorf("reservation of %s holds %s, which was not locked", o.OrderID, id)
		}
	}
	switch rec.Status {
	case statusReserved:
		if err := l.give(ctx, releaseOp(o.OrderID), rec.Lines); err != nil {
			return err
		}
		rec.Status, rec.Reason = statusReleased, o.Reason
		if err := l.markReleased(ctx, rec); err != nil {
			return err
		}
		l.forget(ctx, []string{reserveOp(o.OrderID), releaseOp(o.OrderID)}, rec.Lines)
		fallthrough
	case statusReleased:
		return l.publish(ctx, events.StockReleased, rec)
	default:
		return nil // nothing is held
	}
}

// markReleased records that rec's stock was given back, unless that is recorded
// already.
func (l *ledger) markReleased(ctx context.Context, rec reservation) error {
	return statestore.UpdateJSON(ctx, l.dapr, l.store, reservationKey(rec.OrderID), func(now *reservation, found bool) (bool, error) {
		switch {
		case !found:
			return false, fmt.Errorf("reservation of %s is gone", rec.OrderID)
		case now.Status == statusReleased:
			return false, nil
		}
		*now = rec
		return true, nil
	})
}

// publishPlaced publishes the outcome of an order's placement. A reservation
// released or cancelled since has nothing left to say: the order has moved on.
func (l *ledger) publishPlaced(ctx context.Context, rec reservation) error {
	switch rec.Status {
	case statusReserved:
		return l.publish(ctx, events.StockReserved, rec)
	case statusRejected:
		return l.publish(ctx, events.StockRejected, rec)
	default:
		l.log.InfoContext(ctx, "placement of a cancelled order ignored", "orderId", rec.OrderID, "status", rec.Status)
		return nil
	}
}

func (l *ledger) publish(ctx context.Context, typ string, rec reservation) error {
	return pubsub.Publish(ctx, l.dapr, events.TopicInventory, typ, rec.OrderID, events.Stock{
		OrderID:    rec.OrderID,
		CustomerID: rec.CustomerID,
		TotalCents: rec.TotalCents,
		Currency:   rec.Currency,
		Reason:     rec.Reason,
	})
}

// maxLookup bounds GET /reservations?orderIds=..., which the orders service's
// reconciler sends in batches.
const maxLookup = 100

// reservationStatus is one entry of the answer to GET /reservations: the
// outcome of a recorded reservation, which is what the reconciler checks, without
// its lines.
type reservationStatus struct {
	OrderID    string `json:"orderId"`
	CustomerID string `json:"customerId"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
}

// reservations returns, in one bulk read, the recorded reservations of
// orderIDs in their order, leaving out the orders that have none.
func (l *ledger) reservations(ctx context.Context, orderIDs []string) ([]reservationStatus, error) {
	keys := make([]string, len(orderIDs))
	for i, id := range orderIDs {
		keys[i] = reservationKey(id)
	}
	recs, err := statestore.GetBulkJSON[reservation](ctx, l.dapr, l.store, keys...)
	if err != nil {
		return nil, err
	}
	out := []reservationStatus{}
	for _, key := range keys {
		if rec, found := recs[key]; found {
			out = append(out, reservationStatus{OrderID: rec.OrderID, CustomerID: rec.CustomerID,
				Status: rec.Status, Reason: rec.Reason})
		}
	}
	return out, nil
}

// handleListReservations answers GET /reservations?orderIds=a,b,c with the
// recorded reservations of those orders, in the order asked, each once; an order
// the inventory has not recorded is left out, so the answer may be [].
func handleListReservations(log *slog.Logger, led *ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		orderIDs, err := ids.ParseList("orderIds", "order id", r.URL.Query()["orderIds"], maxLookup)
		var out []reservationStatus
		if err == nil {
			out, err = led.reservations(r.Context(), orderIDs)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	}
}
