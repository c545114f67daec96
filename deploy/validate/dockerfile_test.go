package validate

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// instruction is one Dockerfile instruction, as BuildKit's own parser reads it.
type instruction struct {
	cmd   string   // lower case: from, run, copy, ...
	args  []string // the words after it
	flags []string // --from=..., --mount=...
	json  bool     // exec form: ["a", "b"]
	line  int
}

// stage is one FROM and what follows it.
type stage struct {
	from, name string
	body       []instruction
}

// parseDockerfile returns the stages of the Dockerfile and the defaults of the
// ARGs declared before its first FROM.
func parseDockerfile(t *testing.T) (stages []stage, global map[string]string) {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Dockerfile"))
	require.NoError(t, err)
	defer f.Close()
	res, err := parser.Parse(f)
	require.NoError(t, err, "the Dockerfile does not parse as docker build would read it")
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile line %d: %s", w.Location.Start.Line, w.Short)
	}
	global = map[string]string{}
	for _, n := range res.AST.Children {
		in := instruction{cmd: strings.ToLower(n.Value), flags: n.Flags, json: n.Attributes["json"], line: n.StartLine}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		switch {
		case in.cmd == "arg" && len(stages) == 0:
			name, value, _ := strings.Cut(in.args[0], "=")
			global[name] = value
		case in.cmd == "from":
			st := stage{from: in.args[0]}
			if len(in.args) == 3 && strings.EqualFold(in.args[1], "as") {
				st.name = in.args[2]
			}
			stages = append(stages, st)
		case len(stages) > 0:
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	return stages, global
}

// TestDockerfile checks the image recipe offline, with the parser docker build
// uses: a build stage that makes a static, trimmed binary of the service named
// by SERVICE, and a runtime stage with no shell that runs it as a non-root user.
func TestDockerfile(t *testing.T) {
	stages, global := parseDockerfile(t)
	require.GreaterOrEqual(t, len(stages), 2, "multi-stage: a build stage and a runtime stage")
	build, final := stages[0], stages[len(stages)-1]

	t.Run("build stage", func(t *testing.T) {
		var goBuild string
		var args []string
		for _, in := range build.body {
			switch in.cmd {
			case "arg":
				args = append(args, strings.SplitN(in.args[0], "=", 2)[0])
			case "run":
				if cmd := strings.Join(in.args, " "); strings.Contains(cmd, "go build") {
					goBuild = cmd
				}
			}
		}
		assert.Contains(t, args, "SERVICE", "the build stage takes ARG SERVICE")
		require.NotEmpty(t, goBuild, "a RUN with go build")
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./services/${SERVICE}"} {
			assert.Contains(t, goBuild, want)
		}
	})

	t.Run("the Go that builds", func(t *testing.T) {
		// The image's binary is the one make test ran: built with the Go that
		// go.mod's toolchain line names, whose standard library make vulncheck
		// passed.
		b, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
		require.NoError(t, err)
		m := regexp.MustCompile(`(?m)^toolchain go(\S+)$`).FindSubmatch(b)
		require.NotNil(t, m, "go.mod names a toolchain")
		assert.Equal(t, "golang:${GO_VERSION}", build.from)
		assert.Equal(t, string(m[1]), global["GO_VERSION"], "ARG GO_VERSION's default is the toolchain of go.mod")
	})

	t.Run("runtime stage", func(t *testing.T) {
		assert.Regexp(t, `^(gcr\.io/distroless/static(-debian\d+)?:nonroot|scratch)$`, final.from,
			"a minimal base with no shell")
		var user string
		var exposed, entrypoint bool
		for _, in := range final.body {
			switch in.cmd {
			case "run":
				t.Errorf("line %d: RUN in the runtime stage needs a shell, which the image does not have", in.line)
			case "user":
				user = in.args[0]
			case "expose":
				exposed = true
			case "entrypoint", "cmd":
				entrypoint = entrypoint || in.cmd == "entrypoint"
				assert.True(t, in.json, "line %d: %s in exec form (JSON), which needs no shell", in.line, strings.ToUpper(in.cmd))
			case "copy":
				for _, f := range in.flags {
					if strings.HasPrefix(f, "--from=") {
						assert.Equal(t, "--from="+build.name, f, "line %d: the binary comes from the build stage", in.line)
					}
				}
			}
		}
		uid, err := strconv.Atoi(strings.SplitN(user, ":", 2)[0])
		if assert.NoError(t, err, "USER %q is numeric, so the kubelet can check runAsNonRoot", user) {
			assert.NotZero(t, uid, "USER is not root")
		}
		assert.True(t, exposed, "EXPOSE the service's port")
		assert.True(t, entrypoint, "an ENTRYPOINT")
	})

	t.Run("build context", func(t *testing.T) {
		// .dockerignore is an allowlist; everything a COPY takes from the
		// context must be let back in, or the build fails on a missing file.
		b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
		require.NoError(t, err)
		allowed := map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "!") {
				allowed[strings.TrimPrefix(l, "!")] = true
			}
		}
		for _, st := range stages {
			for _, in := range st.body {
				if in.cmd != "copy" || strings.Contains(strings.Join(in.flags, " "), "--from=") {
					continue
				}
				for _, src := range in.args[:len(in.args)-1] {
					assert.True(t, allowed[src], "line %d: COPY %s, which .dockerignore leaves out", in.line, src)
				}
			}
		}
	})
}

// TestImagesCoverApps checks that SERVICE=<app-id> builds each app of
// dapr.yaml and, once the Makefile has its IMAGES list, that the list is the
// apps and ports of dapr.yaml.
func TestImagesCoverApps(t *testing.T) {
	apps := readDaprYAML(t)
	var want []string
	for _, a := range apps {
		_, err := os.Stat(filepath.Join(repoRoot, "services", a.AppID, "main.go"))
		assert.NoError(t, err, "SERVICE=%s must name a folder of services/ with a main package", a.AppID)
		want = append(want, a.AppID+":"+strconv.Itoa(a.AppPort))
	}
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^IMAGES\s*:=\s*(.+)$`).FindSubmatch(mk)
	require.NotNil(t, m, "the Makefile must list IMAGES := app:port ... for `make images`")
	got := strings.Fields(string(m[1]))
	sort.Strings(got)
	sort.Strings(want)
	assert.Equal(t, want, got, "Makefile IMAGES is app:port for every app of dapr.yaml")
}
