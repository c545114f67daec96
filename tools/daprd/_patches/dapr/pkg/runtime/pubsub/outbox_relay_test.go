package pubsub

// This file is daprshop's, not Dapr's: tools/daprd compiles it into Dapr's
// pkg/runtime/pubsub (patch.sh) to show what outbox.go.patch changes in
// the relay, the subscription that publishes an outbox message once its
// transaction has committed.

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	contribPubsub "github.com/dapr/components-contrib/pubsub"
	"github.com/dapr/components-contrib/state"
	"github.com/dapr/dapr/pkg/apis/common"
	"github.com/dapr/dapr/pkg/apis/components/v1alpha1"
)

// relayStore answers every Get with err, or with nothing when err is nil: the
// state of a transaction that failed never appears.
type relayStore struct {
	state.Store
	err  error
	gets atomic.Int32
}

func (s *relayStore) Get(context.Context, *state.GetRequest) (*state.GetResponse, error) {
	s.gets.Add(1)
	return &state.GetResponse{}, s.err
}

// relayPubsub keeps the relay's handler so that the test can deliver to it.
type relayPubsub struct {
	contribPubsub.PubSub
	handler contribPubsub.Handler
}

func (p *relayPubsub) Subscribe(_ context.Context, _ contribPubsub.SubscribeRequest, h contribPubsub.Handler) error {
	p.handler = h
	return nil
}

// relay subscribes an outbox for store to its internal topic and returns the
// handler, and the topics the outbox published to.
func relay(t *testing.T, store state.Store, discard bool) (contribPubsub.Handler, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var published []string
	o := newTestOutbox(func(_ context.Context, pr *contribPubsub.PublishRequest) error {
		mu.Lock()
		defer mu.Unlock()
		published = append(published, pr.Topic)
		return nil
	}).(*outboxImpl)
	ps := &relayPubsub{}
	o.getPubsubFn = func(string) (contribPubsub.PubSub, bool) { return ps, true }
	o.getStateFn = func(string) (state.Store, bool) { return store, true }

	meta := []common.NameValuePair{
		{Name: outboxPublishPubsubKey, Value: common.DynamicValue{JSON: v1.JSON{Raw: []byte("pubsub")}}},
		{Name: outboxPublishTopicKey, Value: common.DynamicValue{JSON: v1.JSON{Raw: []byte("orders")}}},
	}
	if discard {
		meta = append(meta, common.NameValuePair{
			Name: outboxDiscardWhenMissingStateKey, Value: common.DynamicValue{JSON: v1.JSON{Raw: []byte("true")}},
		})
	}
	o.AddOrUpdateOutbox(v1alpha1.Component{
		ObjectMeta: metav1.ObjectMeta{Name: "orders-store"},
		Spec:       v1alpha1.ComponentSpec{Metadata: meta},
	})
	require.NoError(t, o.SubscribeToInternalTopics(context.Background(), "orders"))
	require.NotNil(t, ps.handler)
	return ps.handler, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), published...)
	}
}

// deliver hands the relay one internal message and returns what it answered,
// failing the test when it has not answered within a minute.
func deliver(t *testing.T, h contribPubsub.Handler) error {
	t.Helper()
	data, err := json.Marshal(map[string]any{
		"id": "outbox-00000000-0000-0000-0000-000000000001", "data": "{}", "datacontenttype": "application/json",
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		done <- h(context.Background(), &contribPubsub.NewMessage{Topic: "ordersordersoutbox", Data: data})
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("the relay has not answered a message whose state never appears within a minute")
		return nil
	}
}

func TestRelayGivesUpOnAMessageWhoseStateNeverAppears(t *testing.T) {
	t.Parallel()
	store := &relayStore{}
	h, published := relay(t, store, false)

	err := deliver(t, h)

	require.Error(t, err, "the message is rejected, so that the broker redelivers it")
	// The schedule (0.5 s, growing by 3, at most 3 s, for 10 s) reads the store
	// about six times; unpatched, it read it thousands of times a second.
	assert.LessOrEqual(t, store.gets.Load(), int32(10))
	assert.Empty(t, published(), "nothing is published for a transaction that did not commit")
}

func TestRelayDiscardsAMessageWhoseStateIsMissingWhenAskedTo(t *testing.T) {
	t.Parallel()
	store := &relayStore{}
	h, published := relay(t, store, true)

	require.NoError(t, deliver(t, h), "outboxDiscardWhenMissingState acknowledges the message")
	assert.Empty(t, published())
}

func TestRelayKeepsAMessageWhenTheStoreFails(t *testing.T) {
	t.Parallel()
	store := &relayStore{err: errors.New("redis: connection pool timeout")}
	h, published := relay(t, store, true)

	err := deliver(t, h)

	require.Error(t, err, "a store that does not answer says nothing about the transaction: the message must not be discarded")
	assert.Empty(t, published())
}
