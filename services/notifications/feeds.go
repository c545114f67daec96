package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/ids"
	"github.com/daprshop/daprshop/internal/keylock"
	"github.com/daprshop/daprshop/internal/pubsub"
	"github.com/daprshop/daprshop/internal/statestore"
)

func feedKey(customerID string) string { return "feed-" + customerID }

// markKey is the key that records that the notification id was added to a
// feed, whether or not the feed still holds it.
func markKey(id string) string { return "notified-" + id }

// feedLength is how many notifications a feed keeps, the latest; the orders
// themselves stay listed in full by orders.
const feedLength = 20

// mark records that a notification was added to the feed of CustomerID.
type mark struct {
	CustomerID string    `json:"customerId"`
	At         time.Time `json:"at"`
}

// notification is one entry of a customer's feed.
type notification struct {
	// ID is events.EventID(orderID, type): the same event delivered twice makes
	// the same id, which is how the feed tells a duplicate.
	ID      string    `json:"id"`
	OrderID string    `json:"orderId"`
	Type    string    `json:"type"`
	Status  string    `json:"status"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// feed is a customer's notifications, oldest first. It is the value at the
// customer's feed key and the answer to GET /notifications.
type feed struct {
	CustomerID    string         `json:"customerId"`
	Notifications []notification `json:"notifications"`
}

// feeds keeps the customers' feeds in the state store. A feed is one key,
// holding the latest feedLength notifications, so that adding one costs the
// same however long the customer has been ordering. Each notification added
// leaves a mark under its id, which is how a duplicate is told from a new one
// after its notification has left the feed.
type feeds struct {
	dapr  sidecar
	store string
	// locks serialises this instance's appends to one feed, so that they do not
	// spend their retries on conflicts with each other; the ETag still guards
	// against other instances.
	locks *keylock.Locks
	now   func() time.Time
}

// add appends n to the feed of customerID, dropping the oldest past
// feedLength, unless n was added before: its mark exists, or the feed holds it
// (the mark is written after the feed, so a failure between the two leaves the
// notification in the feed without its mark, and the redelivery writes it).
func (f *feeds) add(ctx context.Context, customerID string, n notification) error {
	key := feedKey(customerID)
	unlock := f.locks.Lock(key)
	defer unlock()
	read, err := statestore.GetBulk(ctx, f.dapr, f.store, key, markKey(n.ID))
	if err != nil {
		return err
	}
	if len(read[markKey(n.ID)].Value) > 0 {
		return nil
	}
	err = statestore.UpdateJSONFrom(ctx, f.dapr, f.store, key, read[key], func(fd *feed, found bool) (bool, error) {
		if !found {
			fd.CustomerID = customerID
		}
		if slices.ContainsFunc(fd.Notifications, func(x notification) bool { return x.ID == n.ID }) {
			return false, nil
		}
		fd.Notifications = append(fd.Notifications, n)
		if over := len(fd.Notifications) - feedLength; over > 0 {
			fd.Notifications = fd.Notifications[over:]
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	_, err = statestore.CreateJSON(ctx, f.dapr, f.store, markKey(n.ID), mark{CustomerID: customerID, At: n.At})
	return err
}

// list returns the feed of customerID; a customer never notified has an empty one.
func (f *feeds) list(ctx context.Context, customerID string) (feed, error) {
	fd, found, err := statestore.GetJSON[feed](ctx, f.dapr, f.store, feedKey(customerID))
	if !found {
		fd.CustomerID = customerID
	}
	if fd.Notifications == nil {
		fd.Notifications = []notification{}
	}
	return fd, err
}

// onOrderEvent processes an order event of type typ, which is OrderConfirmed or
// OrderCancelled.
func onOrderEvent(f *feeds, typ string) func(context.Context, events.Envelope) error {
	status := events.StatusConfirmed
	if typ == events.OrderCancelled {
		status = events.StatusCancelled
	}
	return func(ctx context.Context, e events.Envelope) error {
		o, err := pubsub.OrderOf(e)
		if err != nil {
			return err
		}
		if o.TotalCents < 0 {
			return pubsub.Poison("order %s: totalCents %d is negative", o.OrderID, o.TotalCents)
		}
		return f.add(ctx, o.CustomerID, notification{
			ID:      events.EventID(o.OrderID, typ),
			OrderID: o.OrderID,
			Type:    typ,
			Status:  status,
			Reason:  o.Reason,
			Message: message(o, status),
			At:      f.now().UTC(),
		})
	}
}

// message is what the customer reads about an order that reached status.
func message(o events.Order, status string) string {
	if status == events.StatusConfirmed {
		return fmt.Sprintf("Your order %s is confirmed; %d.%02d %s was charged.",
			o.OrderID, o.TotalCents/100, o.TotalCents%100, o.Currency)
	}
	return fmt.Sprintf("Your order %s was cancelled: %s.", o.OrderID, reasonText(o.Reason))
}

func reasonText(reason string) string {
	switch reason {
	case events.ReasonOutOfStock:
		return "an item is out of stock"
	case events.ReasonUnknownProduct:
		return "an item is not sold here"
	case events.ReasonPaymentDeclined:
		return "the payment was declined"
	case events.ReasonNoAccount:
		return "there is no account to charge"
	case events.ReasonProcessing:
		return "it could not be processed"
	case events.ReasonTimedOut:
		return "it could not be completed in time"
	case "":
		return "no reason was given"
	default:
		return reason
	}
}

// handleListNotifications answers GET /notifications?customerId=...
func handleListNotifications(log *slog.Logger, f *feeds) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		customerID := r.URL.Query().Get("customerId")
		var (
			fd  feed
			err error
		)
		if customerID == "" {
			err = httpx.Errorf(httpx.EInvalid, "query parameter customerId is required")
		} else if cerr := ids.Check("customerId", customerID); cerr != nil {
			err = httpx.Errorf(httpx.EInvalid, "query parameter %v", cerr)
		}
		if err == nil {
			fd, err = f.list(r.Context(), customerID)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, fd)
	}
}

// maxLookup bounds GET /notified?orderIds=..., which the orders service's
// reconciler sends in batches.
const maxLookup = 100

// notifiedTypes are the order events that notify a customer, in the order GET
// /notified lists an order's entries.
var notifiedTypes = []string{events.OrderConfirmed, events.OrderCancelled}

// notifiedEntry is one entry of the answer to GET /notified: a notification of
// Type about OrderID was added to its customer's feed At.
type notifiedEntry struct {
	OrderID string    `json:"orderId"`
	Type    string    `json:"type"`
	At      time.Time `json:"at"`
}

// notified returns, in one bulk read of the marks, which notifications of
// orderIDs were added to a feed: for each order in turn, confirmed before
// cancelled, one entry per mark found. The marks answer rather than the feeds,
// which drop old notifications and are kept by customer, not by order.
func (f *feeds) notified(ctx context.Context, orderIDs []string) ([]notifiedEntry, error) {
	keys := make([]string, 0, len(orderIDs)*len(notifiedTypes))
	for _, id := range orderIDs {
		for _, typ := range notifiedTypes {
			keys = append(keys, markKey(events.EventID(id, typ)))
		}
	}
	marks, err := statestore.GetBulkJSON[mark](ctx, f.dapr, f.store, keys...)
	if err != nil {
		return nil, err
	}
	out := []notifiedEntry{}
	for _, id := range orderIDs {
		for _, typ := range notifiedTypes {
			if m, found := marks[markKey(events.EventID(id, typ))]; found {
				out = append(out, notifiedEntry{OrderID: id, Type: typ, At: m.At})
			}
		}
	}
	return out, nil
}

// handleListNotified answers GET /notified?orderIds=a,b,c with the
// notifications of those orders that were added to a feed, by order in the
// order asked, each order once; an order that notified nobody is left out, so
// the answer may be [].
func handleListNotified(log *slog.Logger, f *feeds) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		orderIDs, err := ids.ParseList("orderIds", "order id", r.URL.Query()["orderIds"], maxLookup)
		var out []notifiedEntry
		if err == nil {
			out, err = f.notified(r.Context(), orderIDs)
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	}
}
