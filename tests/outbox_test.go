package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dapr/go-sdk/client"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
	"github.com/daprshop/daprshop/internal/runner"
)

// atomicOutbox names the component sets whose orders store commits a state
// transaction whole, the outbox's marker included, so that a save that fails
// publishes nothing (README, "Component sets"). The Redis set is not one of them:
// a Redis transaction is not rolled back when one of its ETag checks fails, and
// the outbox may publish the event of a save that failed, which orders guards
// against itself. So on that set this test would fail by design; skipping it
// there does not hide a missing feature, it is the difference the README states.
var atomicOutbox = map[string]bool{
	"postgres-rabbitmq": true,
	"mariadb-mqtt":      true,
}

// componentSet is the name of the set under test, as COMPONENTS gives it.
func componentSet() string {
	if set := os.Getenv("COMPONENTS"); set != "" {
		return set
	}
	return "components"
}

// TestFailedOrderSavePublishesNothing saves a record in the orders store the way
// orders saves a new order, in one outbox transaction with the event it implies,
// but with an ETag that is no longer the record's, as a writer that lost a race
// would. The save must fail, the record must not change, and the event must reach
// no subscriber. The same save with the right ETag then shows that such an event
// does reach one: the probe, which subscribes to the outbox's topic.
func TestFailedOrderSavePublishesNothing(t *testing.T) {
	set := componentSet()
	if !atomicOutbox[set] {
		t.Skipf("component set %q does not claim that a failed save publishes nothing (README, \"Component sets\")", set)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dapr, probe, namespace, seen := startOutboxProbe(t, ctx)

	// The record, written twice: the first ETag is stale from then on.
	key := uniq("e2e-outbox")
	require.NoError(t, dapr.SaveState(ctx, events.StoreOrders, key, []byte(`{"version":1}`), nil))
	first, err := dapr.GetState(ctx, events.StoreOrders, key, nil)
	require.NoError(t, err)
	require.NoError(t, dapr.SaveStateWithETag(ctx, events.StoreOrders, key, []byte(`{"version":2}`), first.Etag, nil))
	current, err := dapr.GetState(ctx, events.StoreOrders, key, nil)
	require.NoError(t, err)
	require.NotEqual(t, first.Etag, current.Etag)

	lost, sent := uniq("o"), uniq("o")

	err = saveWithEvent(ctx, dapr, key, []byte(`{"version":3}`), first.Etag, lost)
	require.Error(t, err, "a save with a stale ETag must fail")
	after, err := dapr.GetState(ctx, events.StoreOrders, key, nil)
	require.NoError(t, err)
	assert.JSONEq(t, `{"version":2}`, string(after.Value), "the failed save changed the record")
	assert.Equal(t, current.Etag, after.Etag, "the failed save changed the record's ETag")

	require.NoError(t, saveWithEvent(ctx, dapr, key, []byte(`{"version":3}`), current.Etag, sent))
	eventually(t, 60*time.Second, func() bool { return seen(sent) },
		"the event of the save that succeeded never reached the probe\n%s", probe.SidecarLog(20))

	// The sidecar relays an outbox event once it finds its transaction's marker:
	// it waits a second, then looks again and again for about 10 s more. Then it
	// gives up on the failed save's message, which it can only do in the pinned
	// daprd (tools/daprd: a released daprd looks forever): it drops the
	// message where the orders store says so (outboxDiscardWhenMissingState) and
	// otherwise rejects it, and RabbitMQ keeps a rejected message in the
	// queue's dead-letter queue.
	verdict := "rejecting for later processing"
	if componentMetadata(t, "state-orders.yaml")["outboxDiscardWhenMissingState"] == "true" {
		verdict = "discarding message"
	}
	eventually(t, 45*time.Second, func() bool { return strings.Contains(probe.SidecarLog(200), verdict) },
		"the relay never gave up on the failed save's message (%q)\n%s", verdict, probe.SidecarLog(20))
	assert.False(t, seen(lost), "the event of the save that failed reached the probe")
	if conn := componentMetadata(t, "pubsub.yaml")["connectionString"]; conn != "" && verdict != "discarding message" {
		eventually(t, 10*time.Second, func() bool { return deadLettered(t, conn, namespace) == 1 },
			"the rejected message is not in the dead-letter queue")
	}
}

// probeEventType is the type of the events the test publishes through orders'
// outbox: a type no subscriber of the topic routes, so that orders' real
// consumers (the inventory) only acknowledge them.
const probeEventType = "daprshop.e2e.probe.v1"

// startOutboxProbe starts a sidecar of orders' own for the test, with an app
// that subscribes to the outbox's topic, and returns a client of the sidecar,
// the sidecar, its namespace and a function that tells whether the probe app
// has received the event of an order id. The namespace names the outbox's
// internal topic (<namespace><app-id><topic>outbox), so the message of the save
// that fails reaches only this sidecar and never orders' own.
func startOutboxProbe(t *testing.T, ctx context.Context) (client.Client, *runner.Instance, string, func(orderID string) bool) {
	t.Helper()
	namespace := "e2e-" + strings.ToLower(httpx.NewID()[:8])
	t.Setenv("NAMESPACE", namespace)

	var mu sync.Mutex
	received := map[string]bool{}
	subscription := []events.Subscription{{
		PubSubName: events.PubSub,
		Topic:      events.TopicOrderPlaced,
		Routes:     events.Routes{Default: "/probe"},
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/dapr/subscribe":
			httpx.WriteJSON(w, http.StatusOK, subscription)
		case "/probe":
			body, err := io.ReadAll(r.Body)
			var env events.Envelope
			if err == nil {
				env, err = events.DecodeEnvelope(body)
			}
			var data events.Order
			if err == nil && env.Type == probeEventType && env.DecodeData(&data) == nil {
				mu.Lock()
				received[data.OrderID] = true
				mu.Unlock()
			}
			events.Respond(w, nil)
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(ln)
	probe, err := sys.StartSidecar(ctx, "orders", ln.Addr().(*net.TCPAddr).Port)
	require.NoError(t, err)
	t.Cleanup(func() {
		sys.StopInstance(probe)
		srv.Close()
		removeProbeQueues(t, namespace)
		waitOrdersForgets(t, "the stopped probe")
	})

	dapr, err := client.NewClientWithAddressContext(ctx, fmt.Sprintf("127.0.0.1:%d", probe.GRPCPort))
	require.NoError(t, err)
	t.Cleanup(dapr.Close)
	seen := func(orderID string) bool {
		mu.Lock()
		defer mu.Unlock()
		return received[orderID]
	}

	// An event published before the probe's subscription is bound is lost on
	// both sets, so wait until one published straight to the topic arrives.
	warm := uniq("o")
	data, err := json.Marshal(events.Order{OrderID: warm})
	require.NoError(t, err)
	require.NoError(t, dapr.PublishEvent(ctx, events.PubSub, events.TopicOrderPlaced, data,
		client.PublishEventWithContentType("application/json"),
		client.PublishEventWithMetadata(map[string]string{"cloudevent.type": probeEventType})))
	eventually(t, 30*time.Second, func() bool { return seen(warm) },
		"the probe's subscription to %s never received an event\n%s", events.TopicOrderPlaced, probe.SidecarLog(20))
	return dapr, probe, namespace, seen
}

// probeQueue names the RabbitMQ queue of the probe's outbox topic.
func probeQueue(namespace string) (topic, queue string) {
	topic = namespace + "orders" + events.TopicOrderPlaced + "outbox"
	return topic, "orders-" + topic
}

// deadLettered returns how many messages the dead-letter queue of the probe's
// outbox queue holds.
func deadLettered(t *testing.T, conn, namespace string) int {
	t.Helper()
	c, err := amqp.Dial(conn)
	require.NoError(t, err, "connect to RabbitMQ")
	defer c.Close()
	ch, err := c.Channel()
	require.NoError(t, err)
	defer ch.Close()
	_, queue := probeQueue(namespace)
	q, err := ch.QueueDeclarePassive("dlq-"+queue, true, false, false, false, nil)
	if err != nil {
		return -1 // not declared yet
	}
	return q.Messages
}

// removeProbeQueues deletes what the probe left on a RabbitMQ broker: its
// outbox's internal topic's exchange and durable queue, which still holds the
// message of the failed save (or its dead-letter queue does), the durable queue
// of its subscription to the outbox's topic (which would otherwise fill with
// every order placed from then on), and their dead-letter queues and exchanges.
// MQTT needs nothing: the set uses clean sessions, which the broker drops when
// the sidecar disconnects.
func removeProbeQueues(t *testing.T, namespace string) {
	t.Helper()
	conn := componentMetadata(t, "pubsub.yaml")["connectionString"]
	if conn == "" {
		return
	}
	c, err := amqp.Dial(conn)
	if !assert.NoError(t, err, "connect to RabbitMQ to remove the probe's queues") {
		return
	}
	defer c.Close()
	topic, queue := probeQueue(namespace)
	// A failed delete closes the channel, so each gets one of its own.
	do := func(f func(ch *amqp.Channel) error) {
		ch, err := c.Channel()
		if !assert.NoError(t, err) {
			return
		}
		defer ch.Close()
		assert.NoError(t, f(ch))
	}
	subscribed := "orders-" + events.TopicOrderPlaced
	for _, q := range []string{queue, "dlq-" + queue, subscribed, "dlq-" + subscribed} {
		do(func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
	}
	for _, x := range []string{topic, "dlx-" + queue, "dlx-" + subscribed} {
		do(func(ch *amqp.Channel) error { return ch.ExchangeDelete(x, false, false) })
	}
}

// componentMetadata returns the metadata of the component in file of the set.
func componentMetadata(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(resourcesPath(), file))
	require.NoError(t, err)
	var c struct {
		Spec struct {
			Metadata []struct{ Name, Value string } `yaml:"metadata"`
		} `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(b, &c))
	out := map[string]string{}
	for _, m := range c.Spec.Metadata {
		out[m.Name] = m.Value
	}
	return out
}

// saveWithEvent writes value under key with the given ETag and, in the same
// outbox transaction, an event of probeEventType about orderID, as orders'
// writeOrder does: one stored upsert whose metadata gives the event its type, and
// a projection, last, that gives it its data.
func saveWithEvent(ctx context.Context, dapr client.Client, key string, value []byte, etag, orderID string) error {
	payload, err := json.Marshal(events.Order{OrderID: orderID, Status: events.StatusPending, Currency: "EUR"})
	if err != nil {
		return err
	}
	ops := []*client.StateOperation{
		{Type: client.StateOperationTypeUpsert, Item: &client.SetStateItem{
			Key:      key,
			Value:    value,
			Etag:     &client.ETag{Value: etag},
			Metadata: map[string]string{"type": probeEventType, "datacontenttype": "application/json"},
			Options:  &client.StateOptions{Concurrency: client.StateConcurrencyFirstWrite, Consistency: client.StateConsistencyStrong},
		}},
		{Type: client.StateOperationTypeUpsert, Item: &client.SetStateItem{
			Key:      key,
			Value:    payload,
			Metadata: map[string]string{"outbox.projection": "true"},
		}},
	}
	return dapr.ExecuteStateTransaction(ctx, events.StoreOrders, nil, ops)
}
