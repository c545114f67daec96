package redis

// This file is daprshop's, not Dapr's: tools/daprd compiles it into
// components-contrib's pubsub/redis (patch.sh) to show what redis.go.patch
// changes: a subscription's read loop waits for new messages a bounded time, so
// a subscription that stops gives its connection back.

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rediscomponent "github.com/dapr/components-contrib/common/component/redis"
	"github.com/dapr/components-contrib/pubsub"
	"github.com/dapr/kit/logger"
)

// blockingClient answers XREADGROUP as Redis does on a stream that gets no
// message: after the block, with nil; and never, for BLOCK 0. Like a blocked
// socket read, it does not see the context.
type blockingClient struct {
	rediscomponent.RedisClient
	mu     sync.Mutex
	blocks []time.Duration
	errors int
}

func (c *blockingClient) XReadGroupResult(_ context.Context, _, _ string, _ []string, _ int64, block time.Duration) ([]rediscomponent.RedisXStream, error) {
	c.mu.Lock()
	c.blocks = append(c.blocks, block)
	c.mu.Unlock()
	if block <= 0 {
		select {} // BLOCK 0: until a message arrives, which none does
	}
	time.Sleep(block)
	return nil, errNil
}

// errNil is the nil answer of a read that waited its block out (go-redis's
// redis.Nil).
var errNil = errors.New("redis: nil")

func (c *blockingClient) IsNilValueError(err error) bool { return errors.Is(err, errNil) }

// countingLogger counts the errors the loop logs.
type countingLogger struct {
	logger.Logger
	c *blockingClient
}

func (l countingLogger) Errorf(string, ...any) {
	l.c.mu.Lock()
	l.c.errors++
	l.c.mu.Unlock()
}

func TestStoppedSubscriptionGivesItsReadBack(t *testing.T) {
	client := &blockingClient{}
	r := &redisStreams{
		client:         client,
		clientSettings: &rediscomponent.Settings{ConsumerID: "orders"}, // readTimeout unset
		logger:         countingLogger{Logger: logger.NewLogger("test"), c: client},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.pollNewMessagesLoop(ctx, "payments", func(context.Context, *pubsub.NewMessage) error { return nil })
	}()

	time.Sleep(3 * time.Second) // a read or two waited out
	cancel()                    // the app turned unhealthy: the subscription stops
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stopped subscription's read loop is still blocked in XREADGROUP: its connection never returns to the pool")
	}

	client.mu.Lock()
	defer client.mu.Unlock()
	require.NotEmpty(t, client.blocks)
	for _, b := range client.blocks {
		assert.True(t, b > 0 && b <= 5*time.Second, "XREADGROUP BLOCK %s with readTimeout unset", b)
	}
	assert.Zero(t, client.errors, "a read that waited its block out is not an error")
}
