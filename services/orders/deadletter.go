package main

import (
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
)

// deadLetterRecent is how many dead events GET /deadletters shows.
const deadLetterRecent = 20

// Actions taken on a dead event.
const (
	actionNone      = "none"
	actionProcessed = "processed"
	actionCancelled = "cancelled"
)

// deadLetter is what this instance saw of one dead event.
type deadLetter struct {
	ID         string    `json:"id,omitempty"`
	Type       string    `json:"type,omitempty"`
	Source     string    `json:"source,omitempty"`
	Topic      string    `json:"topic,omitempty"`
	OrderID    string    `json:"orderId,omitempty"`
	ReceivedAt time.Time `json:"receivedAt"`
	Action     string    `json:"action"`
	Error      string    `json:"error,omitempty"`
}

// deadLetters counts the dead events this instance received and keeps the most
// recent ones for the operator.
type deadLetters struct {
	mu     sync.Mutex
	count  int64
	recent []deadLetter
	max    int
}

func newDeadLetters(max int) *deadLetters {
	return &deadLetters{max: max}
}

func (d *deadLetters) add(dl deadLetter) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.count++
	d.recent = append([]deadLetter{dl}, d.recent...)
	if len(d.recent) > d.max {
		d.recent = d.recent[:d.max]
	}
}

// deadLetterReport is the answer to GET /deadletters, newest event first.
type deadLetterReport struct {
	Count  int64        `json:"count"`
	Recent []deadLetter `json:"recent"`
}

func (d *deadLetters) report() deadLetterReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	return deadLetterReport{Count: d.count, Recent: append([]deadLetter{}, d.recent...)}
}

// handleDeadLetters answers GET /deadletters.
func handleDeadLetters(dead *deadLetters) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, dead.report())
	}
}

// handleDeadLetter receives the events this app's subscriptions gave up on, and
// logs and counts each one. An event dies poison, dropped at once, or after its
// deliveries kept failing for as long as the retry policy lasts, for a cause
// that may have passed (the store down for a minute). So a dead event is
// followed once more, as its own route would: if the order moves on, or the
// event changes nothing, it was only late. If it fails again it is answered
// RETRY, and the broker hands it out again later. If it is poison, and names
// an order that is not final yet, the order is cancelled (processing_failed),
// because no accepted order may be left pending forever; the cancellation
// also tells the inventory to release its reservation.
func handleDeadLetter(log *slog.Logger, svc *orders, dead *deadLetters) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := deadLetter{ReceivedAt: svc.now().UTC(), Action: actionNone}
		env, err := readEvent(w, r)
		if err == nil {
			rec.ID, rec.Type, rec.Source, rec.Topic = env.ID, env.Type, env.Source, env.Topic
			rec.OrderID = deadOrderID(env)
			err = svc.follow(r.Context(), env, env.Type)
		}
		switch {
		case err == nil:
			rec.Action = actionProcessed
		case errors.Is(err, events.ErrPoison):
			rec.Error = err.Error()
			if validOrderID(rec.OrderID) {
				changed, err := svc.apply(r.Context(), rec.OrderID, "", processingFailed, "")
				if err != nil && !errors.Is(err, events.ErrPoison) {
					log.WarnContext(r.Context(), "cannot cancel the order of a dead event; the sidecar will deliver it again",
						"eventId", env.ID, "type", env.Type, "orderId", rec.OrderID, "err", err)
					events.Respond(w, err)
					return
				}
				if changed {
					rec.Action = actionCancelled
				}
			}
		default:
			log.WarnContext(r.Context(), "dead event failed again; the sidecar will deliver it again",
				"eventId", env.ID, "type", env.Type, "orderId", rec.OrderID, "err", err)
			events.Respond(w, err)
			return
		}
		dead.add(rec)
		log.ErrorContext(r.Context(), "dead event", "eventId", rec.ID, "type", rec.Type, "source", rec.Source,
			"topic", rec.Topic, "orderId", rec.OrderID, "action", rec.Action, "err", rec.Error)
		events.Respond(w, nil)
	}
}

// deadOrderID returns the orderId a dead event's data names, or "". It reads the
// data loosely, because a dead event may be dead exactly for not matching its
// contract.
func deadOrderID(env events.Envelope) string {
	var data map[string]any
	if err := env.DecodeData(&data); err != nil {
		return ""
	}
	id, _ := data["orderId"].(string)
	return id
}
