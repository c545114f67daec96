package runner

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
)

type procSpec struct {
	name    string
	path    string
	args    []string
	dir     string
	env     []string
	logFile string
	console io.Writer // nil: the log file only
}

// proc is a child process in its own process group, its output going to a log
// file, optionally to the console with a prefix, and to a ring of recent lines.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	tailBuf
}

func startProc(spec procSpec) (*proc, error) {
	f, err := os.Create(spec.logFile)
	if err != nil {
		return nil, err
	}
	p := &proc{name: spec.name, done: make(chan struct{})}
	p.tailBuf.max = 200
	writers := []io.Writer{f, &p.tailBuf}
	if spec.console != nil {
		writers = append(writers, &prefixWriter{prefix: "== " + spec.name + " == ", out: spec.console})
	}
	w := io.MultiWriter(writers...)
	p.cmd = exec.Command(spec.path, spec.args...)
	p.cmd.Dir = spec.dir
	p.cmd.Env = spec.env
	p.cmd.Stdout = w
	p.cmd.Stderr = w
	// A process group of its own: stopping the group stops whatever the child
	// started, and a Ctrl-C in the terminal reaches the runner, which then stops
	// the children in order, rather than every child at once.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) exitErr() error {
	if !p.exited() {
		return nil
	}
	return p.err
}

// tailBuf keeps the last max lines written to it.
type tailBuf struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial []byte
}

func (t *tailBuf) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, b...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, string(t.partial[:i]))
		t.partial = t.partial[i+1:]
		if len(t.lines) > t.max {
			t.lines = t.lines[len(t.lines)-t.max:]
		}
	}
	return len(b), nil
}

func (t *tailBuf) tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.lines
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// prefixWriter writes each line with a prefix; lines from several processes stay
// whole because each is written in one call under a shared lock.
type prefixWriter struct {
	prefix  string
	out     io.Writer
	partial []byte
}

var consoleMu sync.Mutex

func (w *prefixWriter) Write(b []byte) (int, error) {
	consoleMu.Lock()
	defer consoleMu.Unlock()
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := make([]byte, 0, len(w.prefix)+i+1)
		line = append(line, w.prefix...)
		line = append(line, w.partial[:i+1]...)
		_, _ = w.out.Write(line)
		w.partial = w.partial[i+1:]
	}
	return len(b), nil
}
