// Package pubsub is the delivery side of daprshop's events, shared by the services
// that publish and consume them: publishing an outcome under its deterministic id,
// answering the sidecar for each delivered event, and counting the events that end
// on a dead-letter topic. The contracts themselves live in package events.
package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/dapr/go-sdk/client"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/ids"
)

// MaxEventBytes is the largest delivered event a handler reads.
const MaxEventBytes = 1 << 20

// RecentDeadLetters is how many dead events GET /deadletters shows.
const RecentDeadLetters = 20

// Publisher is the one method of the Dapr client that Publish uses.
// *client.GRPCClient satisfies it.
type Publisher interface {
	PublishEvent(ctx context.Context, pubsubName, topicName string, data interface{}, opts ...client.PublishEventOption) error
}

// Publish sends payload, as JSON, as the event of type typ about orderID on topic.
// The CloudEvent id is events.EventID(orderID, typ), so publishing the same
// outcome again (after a failure, or on a redelivery) publishes the same id, and
// consumers can tell the duplicate.
func Publish(ctx context.Context, p Publisher, topic, typ, orderID string, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s: %w", typ, err)
	}
	id := events.EventID(orderID, typ)
	err = p.PublishEvent(ctx, events.PubSub, topic, data,
		client.PublishEventWithContentType("application/json"),
		client.PublishEventWithMetadata(map[string]string{"cloudevent.id": id, "cloudevent.type": typ}))
	if err != nil {
		return fmt.Errorf("publish %s on %s: %w", id, topic, err)
	}
	return nil
}

// Poison wraps a reason as an events.ErrPoison, for a payload that breaks its
// contract and so can never be processed.
func Poison(format string, args ...any) error {
	return fmt.Errorf("%w: %s", events.ErrPoison, fmt.Sprintf(format, args...))
}

// OrderOf decodes the order an order event carries, and holds it to what every
// consumer needs: an order id and a customer id. An order that misses either is
// poison.
func OrderOf(e events.Envelope) (events.Order, error) {
	var o events.Order
	if err := e.DecodeData(&o); err != nil {
		return o, err
	}
	if err := ids.Check("orderId", o.OrderID); err != nil {
		return o, Poison("%v", err)
	}
	if err := ids.Check("customerId", o.CustomerID); err != nil {
		return o, Poison("order %s: %v", o.OrderID, err)
	}
	return o, nil
}

// read reads and decodes the CloudEvent the sidecar delivered. A body over
// MaxEventBytes, or one that is not a CloudEvent, is poison: delivering it again
// cannot make it readable.
func read(w http.ResponseWriter, r *http.Request) (events.Envelope, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEventBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return events.Envelope{}, Poison("event is over the limit of %d bytes", MaxEventBytes)
		}
		return events.Envelope{}, fmt.Errorf("read event: %w", err)
	}
	return events.DecodeEnvelope(body)
}

// MaxBulkBytes is the largest batch of delivered events a bulk handler reads.
const MaxBulkBytes = 16 << 20

// SagaWait is how long the sidecars gather the saga's events before they hand
// them to a consumer: each of the saga's steps may wait up to this long.
const SagaWait = 20 * time.Millisecond

// Bulk asks the sidecar to deliver a topic's events in batches, to handlers made
// by BulkHandler: up to a hundred events in one request, or what arrived within
// wait.
func Bulk(wait time.Duration) *events.BulkSubscribe {
	return &events.BulkSubscribe{Enabled: true, MaxMessagesCount: 100, MaxAwaitDurationMs: int(wait / time.Millisecond)}
}

// bulkWorkers bounds how many events of one batch are processed at once.
const bulkWorkers = 16

// workers run the events of batches on goroutines that outlive a batch. A
// goroutine started for one event grows its stack, by copying, to what
// processing an event takes, and the next event's goroutine starts small again:
// that was up to 9% of a saga consumer's CPU (bench/README.md, tuning log 30).
type workers chan func()

// eventWorkers are the process's workers, shared by every bulk route and
// started on first use; they wait for work for as long as the process runs.
var eventWorkers = sync.OnceValue(func() workers {
	ws := make(workers)
	for range bulkWorkers {
		go func() {
			for f := range ws {
				f()
			}
		}()
	}
	return ws
})

// run runs f on a worker that is free, or on a goroutine of its own when none
// is.
func (ws workers) run(f func()) {
	select {
	case ws <- f:
	default:
		go f()
	}
}

// bulkRequest is a batch of events as the sidecar delivers it to a bulk
// subscription's route; each entry's event is a CloudEvent.
type bulkRequest struct {
	Entries []struct {
		EntryID string          `json:"entryId"`
		Event   json.RawMessage `json:"event"`
	} `json:"entries"`
}

// BulkStatus is the answer for one entry of a batch.
type BulkStatus struct {
	EntryID string `json:"entryId"`
	Status  string `json:"status"`
}

// Process is what an app does with one delivered event: nil when done, an
// error wrapping events.ErrPoison when it can never be done, any other error
// when it may succeed later.
type Process = func(context.Context, events.Envelope) error

// BulkHandler returns the handler of one route of a bulk subscription. It hands
// every event of the batch to process, a few at once, and answers each entry's
// status by what process returned (events.StatusOf): one poison event is
// dropped to the dead-letter topic and one failure retried without holding
// back the rest of the batch. A batch that cannot be read at all is retried
// whole.
func BulkHandler(log *slog.Logger, process Process) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req bulkRequest
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBulkBytes))
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			log.WarnContext(r.Context(), "batch of events unreadable; the sidecar will deliver it again", "err", err)
			httpx.WriteError(w, r, log, httpx.Errorf(httpx.EInvalid, "not a batch of events: %v", err))
			return
		}
		statuses := make([]BulkStatus, len(req.Entries))
		sem := make(chan struct{}, bulkWorkers)
		var wg sync.WaitGroup
		for i, entry := range req.Entries {
			wg.Add(1)
			sem <- struct{}{}
			eventWorkers().run(func() {
				defer func() { <-sem; wg.Done() }()
				env, err := decodeEntry(entry.Event)
				if err == nil {
					err = process(r.Context(), env)
				}
				statuses[i] = BulkStatus{EntryID: entry.EntryID, Status: events.StatusOf(err)}
				logOutcome(r.Context(), log, env, statuses[i].Status, err)
			})
		}
		wg.Wait()
		httpx.WriteJSON(w, http.StatusOK, map[string][]BulkStatus{"statuses": statuses})
	}
}

// decodeEntry decodes the CloudEvent of one entry of a batch, holding it to the
// limit of an event delivered alone.
func decodeEntry(event []byte) (events.Envelope, error) {
	if len(event) > MaxEventBytes {
		return events.Envelope{}, Poison("event is over the limit of %d bytes", MaxEventBytes)
	}
	return events.DecodeEnvelope(event)
}

// logOutcome logs what became of one delivered event.
func logOutcome(ctx context.Context, log *slog.Logger, env events.Envelope, status string, err error) {
	attrs := []any{"eventId", env.ID, "type", env.Type, "topic", env.Topic, "status", status}
	switch status {
	case events.StatusSuccess:
		log.DebugContext(ctx, "event processed", attrs...)
	case events.StatusDrop:
		log.WarnContext(ctx, "event dropped as poison", append(attrs, "err", err)...)
	default:
		log.WarnContext(ctx, "event failed; the sidecar will deliver it again", append(attrs, "err", err)...)
	}
}

// Ignore is the process of a subscription's default route: it acknowledges an
// event of a type the service does not consume, so that the event is neither
// retried nor dead-lettered.
func Ignore(context.Context, events.Envelope) error { return nil }

// DeadLetter is what GET /deadletters shows of one dead event. Processed is
// true for an event that was not poison: it had died of a failure that passed
// (its store was down for longer than the retry policy lasts), and the
// dead-letter route processed it after all.
type DeadLetter struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Topic     string `json:"topic,omitempty"`
	Processed bool   `json:"processed"`
}

// DeadLetters counts the events that reached this instance through its dead-letter
// topic and keeps the most recent ones for the operator. The zero value is ready
// to use.
type DeadLetters struct {
	mu     sync.Mutex
	count  int64
	recent []DeadLetter
}

// Report is the answer to GET /deadletters: how many dead events this instance saw,
// and the most recent ones, newest first.
type Report struct {
	Count  int64        `json:"count"`
	Recent []DeadLetter `json:"recent"`
}

func (d *DeadLetters) add(dl DeadLetter) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.count++
	d.recent = append([]DeadLetter{dl}, d.recent...)
	if len(d.recent) > RecentDeadLetters {
		d.recent = d.recent[:RecentDeadLetters]
	}
}

// Report returns the count and the most recent dead events.
func (d *DeadLetters) Report() Report {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Report{Count: d.count, Recent: append([]DeadLetter{}, d.recent...)}
}

// Receive is the handler of the dead-letter topic's subscription. An event
// dies for one of two reasons: it is poison, and was dropped at once, or its
// deliveries kept failing for as long as the retry policy lasts, for a cause
// that may have passed since (a store down for a minute). So each dead event
// is given to process once more, the app's own handling of its type: an event
// that it processes, or finds poison, is counted, logged and acknowledged; one
// that fails again is answered RETRY, and the broker hands it out again later,
// for as long as that takes, so that an event that can succeed is never left
// behind. An event that cannot be read is poison.
func (d *DeadLetters) Receive(log *slog.Logger, process Process) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		env, err := read(w, r)
		if err == nil {
			err = process(r.Context(), env)
		}
		if err != nil && !errors.Is(err, events.ErrPoison) {
			log.WarnContext(r.Context(), "dead event failed again; the sidecar will deliver it again",
				"eventId", env.ID, "type", env.Type, "topic", env.Topic, "err", err)
			events.Respond(w, err)
			return
		}
		d.add(DeadLetter{ID: env.ID, Type: env.Type, Topic: env.Topic, Processed: err == nil})
		log.ErrorContext(r.Context(), "dead event", "eventId", env.ID, "type", env.Type, "topic", env.Topic,
			"processed", err == nil, "err", err)
		events.Respond(w, nil)
	}
}

// ByType returns a Process for Receive that hands an event to the handler of
// its type, and acknowledges an event of any other type, as the
// subscriptions' default routes do.
func ByType(handlers map[string]Process) Process {
	return func(ctx context.Context, env events.Envelope) error {
		if h, ok := handlers[env.Type]; ok {
			return h(ctx, env)
		}
		return nil
	}
}

// Summary is the handler of GET /deadletters.
func (d *DeadLetters) Summary() http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, d.Report())
	}
}

// Topic is one topic an app consumes: Rules route the event types it acts on to
// their paths, and Other takes any other type the topic carries.
type Topic struct {
	Name  string
	Rules []events.Rule
	Other string
	// Bulk, when not nil, has the sidecar deliver the topic's events in
	// batches, to handlers made by BulkHandler.
	Bulk *events.BulkSubscribe
}

// OrderTopic is the topic of orders' events of type typ, routed to path; an event
// of another type on it goes to other.
func OrderTopic(typ, path, other string) Topic {
	return Topic{Name: events.OrderTopic(typ), Rules: []events.Rule{events.TypeRule(typ, path)}, Other: other}
}

// Subscriptions returns the answer to GET /dapr/subscribe for the app appID that
// consumes topics: what it gives up on goes to appID's dead-letter topic; plus
// the subscription to that dead-letter topic itself, delivered to dead.
func Subscriptions(appID, dead string, topics ...Topic) []events.Subscription {
	subs := make([]events.Subscription, 0, len(topics)+1)
	for _, t := range topics {
		subs = append(subs, events.Subscription{
			PubSubName:      events.PubSub,
			Topic:           t.Name,
			Routes:          events.Routes{Rules: t.Rules, Default: t.Other},
			DeadLetterTopic: events.DeadLetterTopic(appID),
			BulkSubscribe:   t.Bulk,
		})
	}
	return append(subs, events.Subscription{
		PubSubName: events.PubSub,
		Topic:      events.DeadLetterTopic(appID),
		Routes:     events.Routes{Default: dead},
	})
}
