package sqlite

// This file is daprshop's, not Dapr's: tools/daprd compiles it into
// components-contrib's nameresolution/sqlite (patch.sh) to show what
// sqlite.go.patch changes: ResolveID reads an app's addresses once per hostsTTL
// instead of querying the registry on every invocation, and still spreads the
// calls over every instance.

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dapr/components-contrib/nameresolution"
	"github.com/dapr/kit/logger"
)

func TestResolveIDCachesAnAppsAddresses(t *testing.T) {
	nr := NewResolver(logger.NewLogger("test")).(*resolver)
	require.NoError(t, nr.Init(context.Background(), nameresolution.Metadata{
		Instance: nameresolution.Instance{Address: "127.0.0.1", DaprInternalPort: 1234, AppID: "gateway"},
		Configuration: map[string]string{
			"connectionString": ":memory:", "cleanupInterval": "0", "updateInterval": "120s",
		},
	}))
	t.Cleanup(func() { nr.Close() })
	register := func(id, addr, app string) {
		t.Helper()
		_, err := nr.db.Exec("INSERT INTO hosts VALUES (?, ?, ?, ?, ?)", id, addr, app, "", time.Now().Unix())
		require.NoError(t, err)
	}
	resolveAll := func(app string, n int) map[string]int {
		t.Helper()
		seen := map[string]int{}
		for i := 0; i < n; i++ {
			addr, err := nr.ResolveID(context.Background(), nameresolution.ResolveRequest{ID: app})
			require.NoError(t, err)
			seen[addr]++
		}
		return seen
	}

	_, err := nr.ResolveID(context.Background(), nameresolution.ResolveRequest{ID: "hello"})
	require.ErrorIs(t, err, ErrNoHost)
	register("a1", "10.0.0.1:1", "hello")
	register("a2", "10.0.0.2:1", "hello")
	first := resolveAll("hello", 60)
	assert.Len(t, first, 2, "an app that was not found is found once it registers, and every instance gets calls: %v", first)

	register("a3", "10.0.0.3:1", "hello")
	assert.Len(t, resolveAll("hello", 60), 2, "within hostsTTL the addresses read last are used")
	time.Sleep(1100 * time.Millisecond) // hostsTTL is a second
	assert.Len(t, resolveAll("hello", 90), 3, "after hostsTTL the registry is read again")
}
