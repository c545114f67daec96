package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// variant is one tree of the project to measure: the committed state before a
// change, say, and the working tree with it.
type variant struct {
	Name string `json:"name"`
	Root string `json:"root"`
}

func parseVariants(s string) ([]variant, error) {
	var out []variant
	for _, f := range strings.Split(s, ",") {
		name, root, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok || name == "" || root == "" {
			return nil, fmt.Errorf("-compare: %q is not name=folder", f)
		}
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(abs, "dapr.yaml")); err != nil {
			return nil, fmt.Errorf("-compare: no dapr.yaml in %s", abs)
		}
		out = append(out, variant{Name: name, Root: abs})
	}
	return out, nil
}

// comparison is one variant measured once: its order steps and hello through
// the gateway against hello directly.
type comparison struct {
	Variant string      `json:"variant"`
	Round   int         `json:"round"`
	Steps   []orderStep `json:"steps"`
	Hello   []helloCost `json:"hello,omitempty"`
	Check   check       `json:"check"`
	Error   string      `json:"error,omitempty"`
}

// helloCost is one path at the fixed rate, with what each process spent on it.
type helloCost struct {
	Path string             `json:"path"`
	Ms   latencies          `json:"ms"`
	CPU  map[string]float64 `json:"cpuMsPer1000Requests"`
}

// runCompare measures every variant in turn, in rounds, each on a fresh system
// and a flushed private Redis, so that a change is measured before and after in
// the same run, on the same machine, under the same neighbours' load.
func runCompare(ctx context.Context, cfg config, rawDir string, logf func(string, ...any)) error {
	var all []comparison
	for round := 1; round <= cfg.compareRounds; round++ {
		for _, v := range cfg.variants {
			if cfg.isolate {
				// The Redis is the bench's own (see isolate.go): a variant
				// starts without the streams and pending events of the last.
				if out, err := exec.Command("redis-cli", "-p", "6379", "flushall").CombinedOutput(); err != nil {
					return fmt.Errorf("flush the bench's redis: %w: %s", err, out)
				}
			}
			c, err := compareOnce(ctx, cfg, v, round, rawDir, logf)
			if err != nil {
				// One failed start (say) loses one measurement, not the run.
				logf("%s, round %d: %v", v.Name, round, err)
				c.Error = err.Error()
			}
			all = append(all, c)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	js, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	md := compareMarkdown(cfg, all)
	for name, b := range map[string][]byte{"compare.json": js, "compare.md": []byte(md)} {
		if err := os.WriteFile(filepath.Join(rawDir, name), b, 0o644); err != nil {
			return err
		}
	}
	logf("wrote %s", filepath.Join(rawDir, "compare.md"))
	fmt.Println(md)
	return nil
}

func compareOnce(ctx context.Context, cfg config, v variant, round int, rawDir string, logf func(string, ...any)) (comparison, error) {
	c := comparison{Variant: v.Name, Round: round}
	vcfg := cfg
	vcfg.root = v.Root
	// A tree that has built its own daprd (bin/daprd) runs on it, so that a
	// change to tools/daprd is measured like any other.
	if own := filepath.Join(v.Root, "bin", "daprd"); fileExists(own) {
		vcfg.daprd = own
	}
	logf("round %d: %s (%s)", round, v.Name, v.Root)
	sys, err := startSystem(ctx, vcfg, filepath.Join(rawDir, fmt.Sprintf("system-%s-%d.log", v.Name, round)))
	if err != nil {
		return c, err
	}
	defer sys.Stop()
	procs := processes(sys)
	if len(cfg.orderRates) > 0 && cfg.orderDuration > 0 {
		s := newShop(sys)
		runID := time.Now().Format("0102150405")
		if err := s.setUp(ctx, "bench", runID, cfg.products, cfg.customers); err != nil {
			return c, err
		}
		b := newOrderBench(cfg, s, runID, procs, func(f string, a ...any) { logf(v.Name+": "+f, a...) })
		b.step(ctx, "warm-up", 20, 5*time.Second, false)
		for _, r := range cfg.orderRates {
			c.Steps = append(c.Steps, b.step(ctx, "compare", r, cfg.orderDuration, true))
		}
		b.ledger.drain(ctx, b.ledger.all(), cfg.drainTimeout)
		if c.Check, err = b.ledger.verify(ctx); err != nil {
			return c, err
		}
	}
	if cfg.fixedDuration > 0 && cfg.fixedRate > 0 {
		for _, p := range helloPaths(sys) {
			if p.Name != pathDirect && p.Name != pathGateway {
				continue
			}
			client := loadClient(5 * time.Second)
			meter := startCost(procs)
			lat, _, _, _ := hit(ctx, client, p, cfg.fixedRate, cfg.fixedDuration)
			cost := meter.stop(p.Name, lat.N)
			hc := helloCost{Path: p.Name, Ms: lat, CPU: map[string]float64{}}
			for _, pc := range cost.Processes {
				if lat.N > 0 {
					hc.CPU[pc.Name] = pc.CPUSeconds * 1000 / float64(lat.N) * 1000
				}
			}
			logf("%s: hello %s %d/s: p50 %.3f ms, p90 %.3f ms, p99 %.3f ms", v.Name, p.Name, cfg.fixedRate, lat.P50, lat.P90, lat.P99)
			c.Hello = append(c.Hello, hc)
		}
	}
	return c, nil
}

func compareMarkdown(cfg config, all []comparison) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## Before and after, in one run\n\n")
	var names []string
	for _, v := range cfg.variants {
		names = append(names, fmt.Sprintf("`%s` = %s", v.Name, v.Root))
	}
	w("Variants: %s. %d rounds, the variants alternating, each on a fresh system and a flushed Redis.\n\n", strings.Join(names, ", "), cfg.compareRounds)
	if len(cfg.orderRates) > 0 {
		w("| variant | round | offered/s | placed/s | confirmed/s | placement p50 / p99 ms | to confirmed p50 / p99 ms | failed | refused | unsettled | apps+sidecars CPU s / 1000 orders | orders daprd | lost |\n")
		w("|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range all {
			for _, s := range c.Steps {
				od := 0.0
				if s.Cost != nil {
					for _, p := range s.Cost.Processes {
						if p.Name == "orders daprd" {
							od = p.CPUPer1000
						}
					}
				}
				sys := 0.0
				if s.Cost != nil {
					sys = s.Cost.SystemPer1000
				}
				w("| %s | %d | %d | %.0f | %.0f | %.1f / %.1f | %.0f / %.0f | %d | %d | %d | %.1f | %.1f | %d |\n", c.Variant, c.Round, s.Rate, s.PlacedPerSec, s.ConfirmedPerSec,
					s.Placement.P50, s.Placement.P99, s.ToConfirmed.P50, s.ToConfirmed.P99, s.Failed, s.Refused, s.Unsettled, sys, od, c.Check.Lost)
			}
		}
		w("\n")
	}
	if cfg.fixedDuration > 0 {
		w("| variant | round | path | p50 / p90 / p99 ms at %d/s | CPU ms per 1000 requests (gateway, gateway daprd, hello daprd, hello) |\n|---|---:|---|---|---|\n", cfg.fixedRate)
		for _, c := range all {
			for _, h := range c.Hello {
				var keys []string
				for k := range h.CPU {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				w("| %s | %d | %s | %.3f / %.3f / %.3f | %.0f, %.0f, %.0f, %.0f |\n", c.Variant, c.Round, h.Path, h.Ms.P50, h.Ms.P90, h.Ms.P99,
					h.CPU["gateway"], h.CPU["gateway daprd"], h.CPU["hello daprd"], h.CPU["hello"])
			}
		}
	}
	return b.String()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
