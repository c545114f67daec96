package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stream is what govulncheck -format json writes, cut to what vulncheck reads:
// two vulnerabilities the code calls (one of them twice, by two traces), and
// one in a package the code imports without calling it.
const stream = `{"config":{"protocol_version":"v1.0.0","scanner_name":"govulncheck"}}
{"osv":{"id":"GO-1","summary":"HTTP/2 server crash in net/http"}}
{"osv":{"id":"GO-2","summary":"memory exhaustion in grpc"}}
{"osv":{"id":"GO-3","summary":"never called"}}
{"finding":{"osv":"GO-1","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http","function":"Serve"},{"module":"example.com/shop","function":"run"}]}}
{"finding":{"osv":"GO-1","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http","function":"Serve"},{"module":"example.com/shop","function":"other"}]}}
{"finding":{"osv":"GO-2","fixed_version":"v1.83.1","trace":[{"module":"google.golang.org/grpc","version":"v1.65.0","package":"google.golang.org/grpc","function":"Dial"}]}}
{"finding":{"osv":"GO-3","fixed_version":"v0.60.0","trace":[{"module":"golang.org/x/net","version":"v0.26.0","package":"golang.org/x/net/http2"}]}}
`

func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name    string
		accept  string
		refused []string // the lines reported NOT ACCEPTED
	}{
		{name: "nothing accepted", refused: []string{"GO-1 in stdlib@v1.26.8", "GO-2 in google.golang.org/grpc@v1.65.0"}},
		{name: "the standard library accepted", accept: "stdlib", refused: []string{"GO-2 in google.golang.org/grpc@v1.65.0"}},
		{name: "a module accepted at its version", accept: "stdlib,google.golang.org/grpc@v1.65.0"},
		{name: "a module accepted at any version", accept: "stdlib,google.golang.org/grpc"},
		{name: "a module accepted at another version", accept: "stdlib,google.golang.org/grpc@v1.60.0",
			refused: []string{"GO-2 in google.golang.org/grpc@v1.65.0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			var args []string
			if tt.accept != "" {
				args = []string{"-accept", tt.accept}
			}
			err := run(args, strings.NewReader(stream), &out)
			var refused []string
			for _, line := range strings.Split(out.String(), "\n") {
				if rest, ok := strings.CutPrefix(line, "NOT ACCEPTED: "); ok {
					id, _, _ := strings.Cut(rest, " (")
					refused = append(refused, id)
				}
			}
			assert.Equal(t, tt.refused, refused)
			assert.Contains(t, out.String(), "2 vulnerabilities reached", "GO-1 once, GO-2; GO-3 is not called")
			assert.NotContains(t, out.String(), "GO-3")
			if tt.accept == "" {
				assert.Contains(t, out.String(), "0 in accepted modules (none accepted)")
			}
			if len(tt.refused) > 0 {
				require.Error(t, err)
				assert.Contains(t, err.Error(), fmt.Sprintf("not accepted: %d;", len(tt.refused)))
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestRunRefusesWhatIsNotGovulncheckJSON(t *testing.T) {
	var out bytes.Buffer
	err := run(nil, strings.NewReader("Scanning your code and 42 packages..."), &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read govulncheck's JSON")
}
