package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/daprshop/daprshop/internal/events"
)

// configurations is where the Kubernetes deployment keeps each app's Dapr
// Configuration, whose access-control list the app's sidecar enforces on every
// call it receives.
const configurations = "../../deploy/base/dapr/configurations"

// accessControl is the part of a Dapr Configuration this test reads.
type accessControl struct {
	DefaultAction string `yaml:"defaultAction"`
	Policies      []struct {
		AppID         string `yaml:"appId"`
		DefaultAction string `yaml:"defaultAction"`
		Operations    []struct {
			Name     string   `yaml:"name"`
			HTTPVerb []string `yaml:"httpVerb"`
			Action   string   `yaml:"action"`
		} `yaml:"operations"`
	} `yaml:"policies"`
}

// allows reports whether the list lets caller invoke path with verb, by Dapr's
// rules: the caller's policy decides, by its first operation that matches, else
// by its own default; a caller without a policy gets the list's default. Every
// operation in deploy/ names one exact path.
func (ac accessControl) allows(caller, verb, path string) bool {
	for _, p := range ac.Policies {
		if p.AppID != caller {
			continue
		}
		for _, op := range p.Operations {
			if op.Name == path && (slices.Contains(op.HTTPVerb, verb) || slices.Contains(op.HTTPVerb, "*")) {
				return op.Action != "deny"
			}
		}
		if p.DefaultAction != "" {
			return p.DefaultAction == "allow"
		}
	}
	return ac.DefaultAction == "allow"
}

// accessControls reads the access-control list of each app, by app-id.
func accessControls(t *testing.T) map[string]accessControl {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(configurations, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string]accessControl{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var cfg struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				AccessControl accessControl `yaml:"accessControl"`
			} `yaml:"spec"`
		}
		require.NoError(t, yaml.Unmarshal(data, &cfg), f)
		appID, ok := strings.CutPrefix(cfg.Metadata.Name, "daprshop-")
		require.True(t, ok, "%s: Configuration %q is not named daprshop-<app-id>", f, cfg.Metadata.Name)
		out[appID] = cfg.Spec.AccessControl
	}
	return out
}

// TestInvocationsAreAllowedOnKubernetes makes orders invoke every app it
// calls (a placement prices its lines at the catalog; the reconciler asks
// notifications about a cancelled order, then the inventory and payments) and
// checks each call against the access-control list of the callee in deploy/:
// a call the code makes and the list denies fails only on Kubernetes, where
// no local test runs.
func TestInvocationsAreAllowedOnKubernetes(t *testing.T) {
	e := newReconcilerEnv(t)
	o := e.cancelFor(e.place("k", appleAndPear), events.PaymentFailed)
	e.fake.consumers.notified[events.EventID(o.ID, events.OrderCancelled)] = true
	e.later(1)
	e.reconcile()

	acls := accessControls(t)
	var callees []string
	for _, call := range e.fake.calls() {
		appID, rest, _ := strings.Cut(call, " ")
		verb, method, _ := strings.Cut(rest, " ")
		path, _, _ := strings.Cut(method, "?")
		acl, ok := acls[appID]
		if assert.True(t, ok, "no Configuration for %s in %s", appID, configurations) {
			assert.True(t, acl.allows("orders", verb, "/"+path), "%s's access control denies orders %s /%s", appID, verb, path)
		}
		if !slices.Contains(callees, appID) {
			callees = append(callees, appID)
		}
	}
	assert.ElementsMatch(t, []string{"catalog", "notifications", "inventory", "payments"}, callees,
		"the scenario makes every call orders makes")
}

// TestAccessControlRules holds allows to Dapr's rules on lists like deploy's.
func TestAccessControlRules(t *testing.T) {
	var ac accessControl
	require.NoError(t, yaml.Unmarshal([]byte(`
defaultAction: deny
policies:
  - appId: gateway
    defaultAction: allow
  - appId: orders
    defaultAction: deny
    operations:
      - name: /charges
        httpVerb: ["GET"]
        action: allow
`), &ac))
	assert.True(t, ac.allows("gateway", "PUT", "/accounts/c1"))
	assert.True(t, ac.allows("orders", "GET", "/charges"))
	assert.False(t, ac.allows("orders", "POST", "/charges"), "another verb")
	assert.False(t, ac.allows("orders", "PUT", "/accounts/c1"), "another path")
	assert.False(t, ac.allows("hello", "GET", "/charges"), "an app without a policy")
}
