package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/pubsub"
)

// maxEventBytes is the largest event body a subscriber reads.
const maxEventBytes = 1 << 20

// subscriptions are the topics and routes the sidecar delivers to this app, in
// batches: the outcomes of the inventory and of payments, each type to its own
// path, any other type of those topics acknowledged, and what cannot be
// processed to orders' dead-letter topic.
func subscriptions(appID string) []events.Subscription {
	return pubsub.Subscriptions(appID, pathDeadLetter,
		pubsub.Topic{
			Name: events.TopicInventory,
			Rules: []events.Rule{
				events.TypeRule(events.StockReserved, pathStockReserved),
				events.TypeRule(events.StockRejected, pathStockRejected),
			},
			Other: pathOtherEvent,
			Bulk:  pubsub.Bulk(pubsub.SagaWait),
		},
		pubsub.Topic{
			Name: events.TopicPayments,
			Rules: []events.Rule{
				events.TypeRule(events.PaymentSucceeded, pathPaymentSucceeded),
				events.TypeRule(events.PaymentFailed, pathPaymentFailed),
			},
			Other: pathOtherEvent,
			Bulk:  pubsub.Bulk(pubsub.SagaWait),
		})
}

// handleSubscribe answers the sidecar's GET /dapr/subscribe.
func handleSubscribe(appID string) http.HandlerFunc {
	subs := subscriptions(appID)
	return func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, subs)
	}
}

// handleOutcome follows one kind of saga outcome, the event type typ, for the
// orders the events of a batch name. Each event's status is SUCCESS when its
// order moved on or the event changed nothing (a duplicate or a late event),
// DROP for an event that can never be processed, RETRY otherwise.
func handleOutcome(log *slog.Logger, svc *orders, typ string) http.HandlerFunc {
	return pubsub.BulkHandler(log, func(ctx context.Context, env events.Envelope) error {
		return svc.follow(ctx, env, typ)
	})
}

// readEvent reads the CloudEvent the sidecar delivered.
func readEvent(w http.ResponseWriter, r *http.Request) (events.Envelope, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return events.Envelope{}, fmt.Errorf("%w: event is over %d bytes", events.ErrPoison, maxEventBytes)
		}
		return events.Envelope{}, fmt.Errorf("read event: %w", err)
	}
	return events.DecodeEnvelope(body)
}

// outcome is what the saga learned about an order.
type outcome int

const (
	stockReserved outcome = iota + 1
	stockRejected
	paymentSucceeded
	paymentFailed
	processingFailed
	// timedOut is the reconciler's: the saga did not finish within
	// config.sagaTimeout.
	timedOut
)

var outcomeOf = map[string]outcome{
	events.StockReserved:    stockReserved,
	events.StockRejected:    stockRejected,
	events.PaymentSucceeded: paymentSucceeded,
	events.PaymentFailed:    paymentFailed,
}

// follow applies the event env, delivered to the route of type typ, to the order
// it names.
func (s *orders) follow(ctx context.Context, env events.Envelope, typ string) error {
	what, ok := outcomeOf[typ]
	if !ok || env.Type != typ {
		return fmt.Errorf("%w: event %s of type %s delivered to the route for %s", events.ErrPoison, env.ID, env.Type, typ)
	}
	var orderID, customerID, reason string
	switch what {
	case stockReserved, stockRejected:
		var p events.Stock
		if err := env.DecodeData(&p); err != nil {
			return err
		}
		orderID, customerID, reason = p.OrderID, p.CustomerID, p.Reason
	default:
		var p events.Payment
		if err := env.DecodeData(&p); err != nil {
			return err
		}
		orderID, customerID, reason = p.OrderID, p.CustomerID, p.Reason
	}
	if orderID == "" {
		return fmt.Errorf("%w: event %s (%s) names no orderId", events.ErrPoison, env.ID, env.Type)
	}
	if !validOrderID(orderID) {
		return fmt.Errorf("%w: event %s (%s) names the malformed orderId %q", events.ErrPoison, env.ID, env.Type, orderID)
	}
	_, err := s.apply(ctx, orderID, customerID, what, reason)
	return err
}

// apply moves the order on by what happened, saves it by compare-and-swap and
// then publishes the event that announces the change. It reports whether the
// outcome moved the order on, in this delivery or in an earlier one whose
// announcement it repeats; an outcome that changes nothing (a duplicate, a late
// event, an order already final) is not an error. An unknown order is poison: no
// redelivery can make it appear, because an order's events are published only
// once the order is saved.
//
// Like inventory and payments, orders publishes an outcome after it has saved
// the state, under a deterministic event id, and the event that caused the
// change is its outbox: when the publish fails, the caller answers RETRY, and the
// redelivered cause finds the order final and announces it again (see
// reannounce). Only the placement, which has no event behind it that would be
// delivered again, goes through Dapr's transactional outbox (writeOrder).
//
// The order's lock serialises the writes of this instance; the ETag guards
// against other instances.
func (s *orders) apply(ctx context.Context, orderID, customerID string, what outcome, reason string) (bool, error) {
	unlock := s.locks.Lock(orderKey(orderID))
	defer unlock()
	for attempt := 0; attempt < casAttempts; attempt++ {
		o, etag, found, err := s.readOrder(ctx, orderID)
		if errors.Is(err, errCorrupt) {
			return false, fmt.Errorf("%w: %v", events.ErrPoison, err)
		}
		if err != nil {
			return false, err
		}
		if !found {
			return false, fmt.Errorf("%w: order %s is unknown", events.ErrPoison, orderID)
		}
		if customerID != "" && customerID != o.CustomerID {
			return false, fmt.Errorf("%w: the event names customer %s, but order %s belongs to %s",
				events.ErrPoison, customerID, orderID, o.CustomerID)
		}
		next, typ, changed := advance(o, what, reason, s.now().UTC())
		if !changed {
			if typ := reannounce(o, what); typ != "" {
				s.log.DebugContext(ctx, "event settled the order before: announcing it again", "orderId", orderID, "status", o.Status, "outcome", what.String())
				return true, s.publish(ctx, o, typ)
			}
			s.log.DebugContext(ctx, "event changes nothing", "orderId", orderID, "status", o.Status, "outcome", what.String())
			return false, nil
		}
		err = s.saveOrder(ctx, next, etag)
		if err == nil {
			s.log.InfoContext(ctx, "order moved on", "orderId", orderID, "from", o.Status,
				"to", next.Status, "reason", next.Reason, "event", typ)
			return true, s.publish(ctx, next, typ)
		}
		// Tell a conflict with another instance, which a fresh read resolves,
		// from a failing store.
		_, now, _, rerr := s.readOrder(ctx, orderID)
		if rerr != nil {
			return false, errors.Join(err, rerr)
		}
		if now == etag {
			return false, err
		}
	}
	return false, fmt.Errorf("order %s still changing after %d attempts", orderID, casAttempts)
}

// publish announces o's change of type typ on the type's topic, under the
// deterministic id events.EventID, so that announcing it again publishes a
// duplicate that consumers recognise. A change no service consumes
// (OrderReserved) has no topic and is not published.
func (s *orders) publish(ctx context.Context, o order, typ string) error {
	topic := events.OrderTopic(typ)
	if topic == "" {
		return nil
	}
	return pubsub.Publish(ctx, s.dapr, topic, typ, o.ID, o.event())
}

// reannounce returns the type of the event that announced the final order o
// when what is the outcome that made it final, and "" otherwise. A redelivery of
// that outcome may mean that its first delivery saved the order but could not
// publish, so the event is published again; any other outcome reaching a final
// order is just late.
func reannounce(o order, what outcome) string {
	switch o.Status {
	case events.StatusConfirmed:
		if what == paymentSucceeded {
			return events.OrderConfirmed
		}
	case events.StatusCancelled:
		var cause outcome
		switch o.Reason {
		case events.ReasonPaymentDeclined:
			cause = paymentFailed
		case events.ReasonProcessing:
			cause = processingFailed
		case events.ReasonTimedOut:
			cause = timedOut
		default:
			cause = stockRejected
		}
		if what == cause {
			return events.OrderCancelled
		}
	}
	return ""
}

// advance returns o moved on by what happened at at, the type of the event that
// announces the change, and whether anything changed. Final orders never change.
func advance(o order, what outcome, reason string, at time.Time) (order, string, bool) {
	if o.terminal() {
		return o, "", false
	}
	// Copy the history so that the result never shares an array with o.
	o.History = slices.Clone(o.History)
	switch what {
	case stockReserved:
		if o.Status != events.StatusPending {
			return o, "", false
		}
		o.Status = events.StatusReserved
		o.History = append(o.History, change{Status: events.StatusReserved, At: at})
		return o, events.OrderReserved, true
	case stockRejected:
		// The inventory reserves every line or none, so a rejection of an order
		// already reserved contradicts it; the reservation stands.
		if o.Status != events.StatusPending {
			return o, "", false
		}
		if reason == "" {
			reason = events.ReasonOutOfStock
		}
		return cancel(o, reason, at), events.OrderCancelled, true
	case paymentSucceeded:
		// Payments charges only after a reservation, so a payment that overtook
		// its StockReserved confirms a pending order too, and the history says
		// that the stock was reserved. Paid and confirmed are saved at once, so
		// paid is never a stored status.
		o = reservedBy(o, at)
		o.Status = events.StatusConfirmed
		o.Reason = ""
		o.History = append(o.History,
			change{Status: events.StatusPaid, At: at},
			change{Status: events.StatusConfirmed, At: at})
		return o, events.OrderConfirmed, true
	case paymentFailed:
		return cancel(reservedBy(o, at), events.ReasonPaymentDeclined, at), events.OrderCancelled, true
	case processingFailed:
		return cancel(o, events.ReasonProcessing, at), events.OrderCancelled, true
	case timedOut:
		return cancel(o, events.ReasonTimedOut, at), events.OrderCancelled, true
	}
	return o, "", false
}

// reservedBy returns o with its reservation in the history, at at, when a
// payment outcome overtook the StockReserved that caused it: payments acts only
// on a reservation, so a pending order that hears from payments was reserved.
func reservedBy(o order, at time.Time) order {
	if o.Status == events.StatusPending {
		o.Status = events.StatusReserved
		o.History = append(o.History, change{Status: events.StatusReserved, At: at})
	}
	return o
}

func cancel(o order, reason string, at time.Time) order {
	o.Status = events.StatusCancelled
	o.Reason = reason
	o.History = append(o.History, change{Status: events.StatusCancelled, At: at, Reason: reason})
	return o
}

// String names an outcome in the log.
func (w outcome) String() string {
	switch w {
	case stockReserved:
		return "stock reserved"
	case stockRejected:
		return "stock rejected"
	case paymentSucceeded:
		return "payment succeeded"
	case paymentFailed:
		return "payment failed"
	case processingFailed:
		return "processing failed"
	case timedOut:
		return "timed out"
	}
	return fmt.Sprintf("outcome(%d)", int(w))
}
