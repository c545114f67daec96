package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Envelope is the part of a CloudEvent a consumer reads.
type Envelope struct {
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	Topic           string          `json:"topic"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// ErrPoison marks an event that can never be processed: retrying it cannot help.
var ErrPoison = errors.New("poison event")

// DecodeEnvelope reads a CloudEvent from body.
func DecodeEnvelope(body []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return e, fmt.Errorf("%w: not a CloudEvent: %v", ErrPoison, err)
	}
	if e.ID == "" || e.Type == "" {
		return e, fmt.Errorf("%w: CloudEvent without id or type", ErrPoison)
	}
	return e, nil
}

// DecodeData decodes the event's data into v. The data may be a JSON object, or,
// as the transactional outbox delivers it, that object encoded as a JSON string.
func (e Envelope) DecodeData(v any) error {
	data := bytes.TrimSpace(e.Data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("%w: data of event %s: %v", ErrPoison, e.ID, err)
		}
		data = []byte(s)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: data of event %s (%s): %v", ErrPoison, e.ID, e.Type, err)
	}
	return nil
}

// Delivery statuses a subscriber answers Dapr with.
const (
	StatusSuccess = "SUCCESS" // processed, or a duplicate: done with it
	StatusRetry   = "RETRY"   // failed for now: deliver it again
	StatusDrop    = "DROP"    // can never be processed: send it to the dead-letter topic
)

// StatusOf is the delivery status of an event whose processing returned err: a
// nil err is SUCCESS, an ErrPoison is DROP, anything else RETRY.
func StatusOf(err error) string {
	switch {
	case err == nil:
		return StatusSuccess
	case errors.Is(err, ErrPoison):
		return StatusDrop
	default:
		return StatusRetry
	}
}

// Respond tells the sidecar what became of a delivered event. A nil err is
// SUCCESS, an ErrPoison is DROP (the sidecar moves it to the dead-letter topic),
// anything else RETRY.
func Respond(w http.ResponseWriter, err error) string {
	status := StatusOf(err)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"status": status})
	return status
}

// Subscription is one entry of the answer to the sidecar's GET /dapr/subscribe.
type Subscription struct {
	PubSubName      string         `json:"pubsubname"`
	Topic           string         `json:"topic"`
	Routes          Routes         `json:"routes"`
	DeadLetterTopic string         `json:"deadLetterTopic,omitempty"`
	BulkSubscribe   *BulkSubscribe `json:"bulkSubscribe,omitempty"`
}

// BulkSubscribe asks the sidecar to deliver a topic's events in batches: up to
// MaxMessagesCount events in one request, or what arrived within
// MaxAwaitDurationMs.
type BulkSubscribe struct {
	Enabled            bool `json:"enabled"`
	MaxMessagesCount   int  `json:"maxMessagesCount,omitempty"`
	MaxAwaitDurationMs int  `json:"maxAwaitDurationMs,omitempty"`
}

// Routes sends each event type of a topic to its own path.
type Routes struct {
	Rules   []Rule `json:"rules,omitempty"`
	Default string `json:"default,omitempty"`
}

// Rule routes events that match a CEL expression to a path.
type Rule struct {
	Match string `json:"match"`
	Path  string `json:"path"`
}

// TypeRule routes events of type typ to path.
func TypeRule(typ, path string) Rule {
	return Rule{Match: fmt.Sprintf("event.type == %q", typ), Path: path}
}
