// Command vulncheck reads what `govulncheck -format json` writes and fails when
// the code reaches a known vulnerability that this repository can fix by moving
// a dependency or the toolchain. Modules it is told to accept are reported and
// let pass: a module pinned on purpose, whose move to a fixed version is a piece
// of work of its own, or the standard library (stdlib) of a Go that is not this
// repository's to choose.
//
//	govulncheck -format json ./... | go run ./tools/vulncheck -accept stdlib
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(1)
	}
}

// message is the part of govulncheck's JSON stream that vulncheck reads.
type message struct {
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Function string `json:"function"`
		} `json:"trace"`
	} `json:"finding"`
}

// reached is a vulnerability the code calls, in one module at one version.
type reached struct {
	id, module, version, fixed string
}

func (r reached) String() string {
	fixed := r.fixed
	if fixed == "" {
		fixed = "no fixed version"
	}
	return fmt.Sprintf("%s in %s@%s (fixed in %s)", r.id, r.module, r.version, fixed)
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("vulncheck", flag.ContinueOnError)
	accept := fs.String("accept", "", "comma-separated modules (path or path@version) whose vulnerabilities are reported but let pass")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var accepted []string
	if *accept != "" {
		accepted = strings.Split(*accept, ",")
	}

	summaries := map[string]string{}
	var found []reached
	dec := json.NewDecoder(stdin)
	for {
		var m message
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read govulncheck's JSON: %w", err)
		}
		if m.OSV != nil {
			summaries[m.OSV.ID] = m.OSV.Summary
		}
		// Only a finding whose innermost frame names a function is code that
		// the module calls; the others are packages or modules it merely has.
		if f := m.Finding; f != nil && len(f.Trace) > 0 && f.Trace[0].Function != "" {
			r := reached{id: f.OSV, module: f.Trace[0].Module, version: f.Trace[0].Version, fixed: f.FixedVersion}
			if !slices.Contains(found, r) {
				found = append(found, r)
			}
		}
	}

	var refused []reached
	for _, r := range found {
		verdict := "accepted"
		if !slices.Contains(accepted, r.module) && !slices.Contains(accepted, r.module+"@"+r.version) {
			verdict = "NOT ACCEPTED"
			refused = append(refused, r)
		}
		fmt.Fprintf(stdout, "%s: %s: %s\n", verdict, r, summaries[r.id])
	}
	acceptedNames := *accept
	if acceptedNames == "" {
		acceptedNames = "none accepted"
	}
	fmt.Fprintf(stdout, "%d vulnerabilities reached, %d in accepted modules (%s)\n",
		len(found), len(found)-len(refused), acceptedNames)
	if len(refused) > 0 {
		return fmt.Errorf("reachable vulnerabilities in modules not accepted: %d; move each to its fixed version", len(refused))
	}
	return nil
}
