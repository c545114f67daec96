// Package runner starts a daprshop system the way the Dapr CLI's multi-app run
// (`dapr run -f .`) does, from the same dapr.yaml, on a machine without the CLI:
// each app with its own daprd, the environment the CLI gives an app, logs per app
// under .dapr/logs, and every child in its own process group so that stopping the
// runner leaves nothing behind.
package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// Template is the part of Dapr's multi-app run template that the runner reads.
// Fields it does not know are ignored, as the CLI ignores them.
type Template struct {
	Version int         `yaml:"version"`
	Common  AppSettings `yaml:"common"`
	Apps    []App       `yaml:"apps"`
}

// AppSettings are the settings an app may have and the common section may give
// every app.
type AppSettings struct {
	ResourcesPath        string   `yaml:"resourcesPath"`
	ResourcesPaths       []string `yaml:"resourcesPaths"`
	ConfigFilePath       string   `yaml:"configFilePath"`
	AppProtocol          string   `yaml:"appProtocol"`
	AppHealthCheckPath   string   `yaml:"appHealthCheckPath"`
	EnableAppHealthCheck *bool    `yaml:"enableAppHealthCheck"`
	// The app health probe: seconds between probes, milliseconds a probe may
	// take, failed probes before the app counts as unhealthy. 0: Dapr's default.
	AppHealthProbeInterval int               `yaml:"appHealthProbeInterval"`
	AppHealthProbeTimeout  int               `yaml:"appHealthProbeTimeout"`
	AppHealthThreshold     int               `yaml:"appHealthThreshold"`
	LogLevel               string            `yaml:"logLevel"`
	DaprdLogDestination    string            `yaml:"daprdLogDestination"`
	AppLogDestination      string            `yaml:"appLogDestination"`
	Env                    map[string]string `yaml:"env"`
}

// App is one entry of the template's apps list.
type App struct {
	AppSettings  `yaml:",inline"`
	AppID        string   `yaml:"appID"`
	AppDirPath   string   `yaml:"appDirPath"`
	AppPort      int      `yaml:"appPort"`
	DaprHTTPPort int      `yaml:"daprHTTPPort"`
	DaprGRPCPort int      `yaml:"daprGRPCPort"`
	MetricsPort  int      `yaml:"metricsPort"`
	Command      []string `yaml:"command"`
}

// LoadTemplate reads a multi-app run template and resolves its paths against the
// template's folder, as the CLI does.
func LoadTemplate(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Template
	if err := yaml.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if t.Version != 1 {
		return nil, fmt.Errorf("%s: version %d, want 1", path, t.Version)
	}
	if len(t.Apps) == 0 {
		return nil, fmt.Errorf("%s: no apps", path)
	}
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i := range t.Apps {
		a := &t.Apps[i]
		if a.AppID == "" || a.AppDirPath == "" || len(a.Command) == 0 {
			return nil, fmt.Errorf("%s: app %d needs appID, appDirPath and command", path, i)
		}
		if seen[a.AppID] {
			return nil, fmt.Errorf("%s: app-id %s twice", path, a.AppID)
		}
		seen[a.AppID] = true
		a.AppDirPath = abs(base, a.AppDirPath)
		a.ResourcesPath = abs(base, a.ResourcesPath)
		a.ConfigFilePath = abs(base, a.ConfigFilePath)
		for j, p := range a.ResourcesPaths {
			a.ResourcesPaths[j] = abs(base, p)
		}
	}
	t.Common.ResourcesPath = abs(base, t.Common.ResourcesPath)
	t.Common.ConfigFilePath = abs(base, t.Common.ConfigFilePath)
	for j, p := range t.Common.ResourcesPaths {
		t.Common.ResourcesPaths[j] = abs(base, p)
	}
	return &t, nil
}

func abs(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// resolved is an app's settings with the common section applied.
type resolved struct {
	App
	resources []string
	// extraEnv is added to the app's environment last: what StartInstance is
	// given for one instance.
	extraEnv map[string]string
}

// resolve applies the common section to each app: an app's own value wins, env
// maps are merged.
func (t *Template) resolve() ([]resolved, error) {
	out := make([]resolved, 0, len(t.Apps))
	for _, a := range t.Apps {
		c := t.Common
		r := resolved{App: a}
		r.resources = firstPaths(
			append(a.ResourcesPaths, a.ResourcesPath),
			append(c.ResourcesPaths, c.ResourcesPath),
		)
		if len(r.resources) == 0 {
			return nil, errors.New("app " + a.AppID + " has no resourcesPath")
		}
		r.ConfigFilePath = first(a.ConfigFilePath, c.ConfigFilePath)
		r.AppProtocol = first(a.AppProtocol, c.AppProtocol, "http")
		r.AppHealthCheckPath = first(a.AppHealthCheckPath, c.AppHealthCheckPath)
		if r.EnableAppHealthCheck == nil {
			r.EnableAppHealthCheck = c.EnableAppHealthCheck
		}
		r.AppHealthProbeInterval = firstInt(a.AppHealthProbeInterval, c.AppHealthProbeInterval)
		r.AppHealthProbeTimeout = firstInt(a.AppHealthProbeTimeout, c.AppHealthProbeTimeout)
		r.AppHealthThreshold = firstInt(a.AppHealthThreshold, c.AppHealthThreshold)
		r.LogLevel = first(a.LogLevel, c.LogLevel, "info")
		r.DaprdLogDestination = first(a.DaprdLogDestination, c.DaprdLogDestination, "file")
		r.AppLogDestination = first(a.AppLogDestination, c.AppLogDestination, "fileAndConsole")
		env := map[string]string{}
		for k, v := range c.Env {
			env[k] = v
		}
		for k, v := range a.Env {
			env[k] = v
		}
		r.Env = env
		out = append(out, r)
	}
	return out, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstInt(vals ...int) int {
	for _, v := range vals {
		if v != 0 {
			return v
		}
	}
	return 0
}

func firstPaths(lists ...[]string) []string {
	for _, l := range lists {
		var out []string
		for _, p := range l {
			if p != "" {
				out = append(out, p)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}
