package tests

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHelloThroughGateway(t *testing.T) {
	r := call(t, http.MethodGet, "/api/hello/service", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "Hello from Service!", string(r.body))
	assert.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
	assert.NotEmpty(t, r.header.Get("X-Request-Id"))
	assert.True(t, strings.HasPrefix(r.header.Get("X-Instance-Id"), "hello-"), r.header.Get("X-Instance-Id"))
}

func TestGatewayKeepsRequestID(t *testing.T) {
	r := call(t, http.MethodGet, "/api/hello/service", nil, map[string]string{"X-Request-Id": "trace-me-42"})
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, []string{"trace-me-42"}, r.header.Values("X-Request-Id"))
}

func TestGatewayUnknownApp(t *testing.T) {
	r := call(t, http.MethodGet, "/api/nosuchapp/service", nil, nil)
	p := requireProblem(t, r, http.StatusNotFound)
	assert.Contains(t, p.Detail, "nosuchapp")
	assert.NotEmpty(t, r.header.Get("X-Request-Id"))
}

func TestGatewayUnknownPathOfApp(t *testing.T) {
	r := call(t, http.MethodGet, "/api/hello/nothing-here", nil, nil)
	requireProblem(t, r, http.StatusNotFound)
	assert.True(t, strings.HasPrefix(r.header.Get("X-Instance-Id"), "hello-"), "the 404 comes from hello itself")
}

func TestGatewayOversizedBody(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2<<20)
	r := call(t, http.MethodPost, "/api/hello/service", big, nil)
	p := requireProblem(t, r, http.StatusRequestEntityTooLarge)
	assert.Contains(t, p.Detail, "limit")
}

// echo is an app the test serves itself behind a sidecar of its own.
func serveApp(t *testing.T, appID string, h http.Handler) (stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, err := sys.StartSidecar(ctx, appID, ln.Addr().(*net.TCPAddr).Port)
	require.NoError(t, err)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			srv.Close()
			sys.StopInstance(inst)
		}
	}
	t.Cleanup(stop)
	return stop
}

// eventually calls f until it returns true or the deadline passes.
func eventually(t *testing.T, d time.Duration, f func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf(msg, args...)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitOrdersForgets waits, after an instance registered under orders' app-id
// (what names) has stopped, until it has left the name registry: until then
// the gateway would send some calls for orders to it.
func waitOrdersForgets(t *testing.T, what string) {
	t.Helper()
	eventually(t, 30*time.Second, func() bool {
		for i := 0; i < 20; i++ {
			if call(t, http.MethodGet, "/api/orders?customerId=gone", nil, nil).status != http.StatusOK {
				return false
			}
		}
		return true
	}, "orders is still resolved to %s", what)
}

func TestGatewayPreservesRequestAndAnswer(t *testing.T) {
	serveApp(t, "ghost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Method", r.Method)
		w.Header().Set("X-Seen-Path", r.URL.Path)
		w.Header().Set("X-Seen-Query", r.URL.RawQuery)
		w.Header().Set("X-Seen-Idempotency-Key", r.Header.Get("Idempotency-Key"))
		w.Header().Set("X-Seen-Traceparent", r.Header.Get("Traceparent"))
		w.Header().Set("Content-Type", "application/vnd.test")
		w.WriteHeader(http.StatusTeapot)
		buf := new(bytes.Buffer)
		buf.ReadFrom(r.Body)
		fmt.Fprintf(w, "got:%s", buf.String())
	}))
	var r response
	eventually(t, 30*time.Second, func() bool {
		r = call(t, http.MethodPatch, "/api/ghost/things/42?color=red&size=2", []byte(`{"a":1}`), map[string]string{
			"Idempotency-Key": "key-1",
			"Traceparent":     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		})
		return r.status == http.StatusTeapot
	}, "ghost never answered through the gateway; last status %d", r.status)
	assert.Equal(t, "PATCH", r.header.Get("X-Seen-Method"))
	assert.Equal(t, "/things/42", r.header.Get("X-Seen-Path"))
	assert.Equal(t, "color=red&size=2", r.header.Get("X-Seen-Query"))
	assert.Equal(t, "key-1", r.header.Get("X-Seen-Idempotency-Key"))
	assert.Contains(t, r.header.Get("X-Seen-Traceparent"), "4bf92f3577b34da6a3ce929d0e0e4736", "the trace id travels on")
	assert.Equal(t, "application/vnd.test", r.header.Get("Content-Type"))
	assert.Equal(t, `got:{"a":1}`, string(r.body))
}

func TestGatewayTargetDown(t *testing.T) {
	stop := serveApp(t, "ghost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("here"))
	}))
	eventually(t, 30*time.Second, func() bool {
		return call(t, http.MethodGet, "/api/ghost/x", nil, nil).status == http.StatusOK
	}, "ghost never answered through the gateway")
	stop()
	var r response
	eventually(t, 30*time.Second, func() bool {
		r = call(t, http.MethodGet, "/api/ghost/x", nil, nil)
		return r.status != http.StatusOK
	}, "ghost still answers after it stopped")
	assert.Contains(t, []int{http.StatusBadGateway, http.StatusServiceUnavailable}, r.status, "body: %s", r.body)
	assert.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
}

func TestGatewayTimeout(t *testing.T) {
	serveApp(t, "slowpoke", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(2 * gatewayTimeout):
			case <-r.Context().Done():
			}
		}
		w.Write([]byte("done"))
	}))
	eventually(t, 30*time.Second, func() bool {
		return call(t, http.MethodGet, "/api/slowpoke/fast", nil, nil).status == http.StatusOK
	}, "slowpoke never answered through the gateway")
	r := call(t, http.MethodGet, "/api/slowpoke/slow", nil, nil)
	p := requireProblem(t, r, http.StatusGatewayTimeout)
	assert.Contains(t, p.Detail, "slowpoke")
}

func TestGatewaySpreadsOverInstances(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	second, err := sys.StartInstance(ctx, "hello", nil)
	require.NoError(t, err)
	t.Cleanup(func() { sys.StopInstance(second) })
	want := map[string]bool{}
	for _, in := range sys.Instances("hello") {
		want[in.ID] = true
	}
	require.Len(t, want, 2)

	// Name resolution learns of the new instance within a few seconds; from then
	// on every batch of 50 calls must reach both.
	var seen map[string]int
	eventually(t, 45*time.Second, func() bool {
		seen = map[string]int{}
		for i := 0; i < 50; i++ {
			r := call(t, http.MethodGet, "/api/hello/service", nil, nil)
			require.Equal(t, http.StatusOK, r.status)
			require.Equal(t, "Hello from Service!", string(r.body))
			seen[r.header.Get("X-Instance-Id")]++
		}
		for id := range want {
			if seen[id] == 0 {
				return false
			}
		}
		return true
	}, "50 calls did not reach both instances %v: %v", want, seen)
}
