package grpc

// This file is daprshop's, not Dapr's: tools/daprd compiles it into Dapr's
// pkg/api/grpc (patch.sh) to show what server.go.patch changes: the sidecar's
// gRPC servers (the API its app calls, and the one other sidecars call) serve
// calls on long-lived workers.

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	grpcGo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/dapr/kit/logger"
)

// goroutines is a gRPC service whose one method answers with the id of the
// goroutine that served the call.
var goroutines = grpcGo.ServiceDesc{
	ServiceName: "daprshop.test.Goroutines",
	HandlerType: (*any)(nil),
	Methods: []grpcGo.MethodDesc{{
		MethodName: "Current",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpcGo.UnaryServerInterceptor) (any, error) {
			if err := dec(new(emptypb.Empty)); err != nil {
				return nil, err
			}
			return wrapperspb.String(goroutineID()), nil
		},
	}},
}

// goroutineID returns the id the runtime gives the calling goroutine in its
// stack traces.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := bytes.Cut(bytes.TrimPrefix(buf, []byte("goroutine ")), []byte(" "))
	return string(id)
}

func TestCallsAreServedByWorkers(t *testing.T) {
	s := &server{
		config: ServerConfig{MaxRequestBodySize: 4 << 20, ReadBufferSize: 4 << 10},
		logger: logger.NewLogger("dapr.runtime.grpc.test"),
	}
	srv, err := s.getGRPCServer()
	require.NoError(t, err)
	srv.RegisterService(&goroutines, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	conn, err := grpcGo.NewClient(lis.Addr().String(), grpcGo.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })

	// One call after another, each finds a worker free. Without workers, each
	// call would be served by a goroutine started for it: 100 of them.
	seen := make(map[string]bool)
	for range 100 {
		var id wrapperspb.StringValue
		require.NoError(t, conn.Invoke(t.Context(), "/daprshop.test.Goroutines/Current", &emptypb.Empty{}, &id))
		require.NotEmpty(t, id.GetValue())
		seen[id.GetValue()] = true
	}
	assert.LessOrEqual(t, len(seen), streamWorkers, "goroutines that served 100 calls")
}
