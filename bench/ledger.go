package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/daprshop/daprshop/internal/httpx"
)

// entry is one order the bench asked for: what it sent, what the gateway
// answered, and what became of the order.
type entry struct {
	key      string
	step     int
	customer string
	lines    []lineView
	body     []byte

	answered  bool
	code      int
	latency   time.Duration
	err       string
	instance  string
	recovered bool // learned by retrying with the same Idempotency-Key
	// refused is a 503 that says the service is at capacity, with the
	// Retry-After a client needs: it placed nothing, so the order is not retried
	// (the stock and balance checks would catch one it placed all the same).
	refused bool

	orderID string
	final   *orderView
}

// ledger is every order the bench placed, by Idempotency-Key. Every order the
// system accepted is in it, including those whose answer was lost and that a
// retry with the same key recovered, so that the stock and the balances can be
// checked against it.
type ledger struct {
	mu      sync.Mutex
	runID   string
	rng     *rand.Rand
	shop    *shop
	byKey   map[string]*entry
	entries []*entry
	step    int
}

func newLedger(s *shop, runID string, seed uint64) *ledger {
	return &ledger{shop: s, runID: runID, rng: rand.New(rand.NewPCG(seed, 0x5eed)), byKey: map[string]*entry{}}
}

// targeter makes each request a new order: a random customer, one or two random
// products, one to three of each, and a unique Idempotency-Key that is also the
// request id, which every answer echoes, so that each answer finds its order.
func (l *ledger) targeter(step int) vegeta.Targeter {
	url := l.shop.gateway + "/api/orders"
	return func(t *vegeta.Target) error {
		l.mu.Lock()
		e := &entry{key: fmt.Sprintf("%s-%d", l.runID, len(l.entries)), step: step}
		e.customer = l.shop.customers[l.rng.IntN(len(l.shop.customers))]
		n := 1 + l.rng.IntN(2)
		first := l.rng.IntN(len(l.shop.products))
		for i := 0; i < n; i++ {
			p := l.shop.products[(first+i)%len(l.shop.products)]
			e.lines = append(e.lines, lineView{ProductID: p.ID, Quantity: 1 + int64(l.rng.IntN(3))})
		}
		l.byKey[e.key] = e
		l.entries = append(l.entries, e)
		l.mu.Unlock()

		items := make([]map[string]any, len(e.lines))
		for i, ln := range e.lines {
			items[i] = map[string]any{"productId": ln.ProductID, "quantity": ln.Quantity}
		}
		body, err := json.Marshal(map[string]any{"customerId": e.customer, "items": items})
		if err != nil {
			return err
		}
		e.body = body
		t.Method = http.MethodPost
		t.URL = url
		t.Body = body
		t.Header = http.Header{
			"Content-Type":    []string{"application/json"},
			"Idempotency-Key": []string{e.key},
			"X-Request-Id":    []string{e.key},
		}
		return nil
	}
}

// record files an answer under its order.
func (l *ledger) record(res *vegeta.Result) {
	key := res.Headers.Get("X-Request-Id")
	l.mu.Lock()
	e := l.byKey[key]
	l.mu.Unlock()
	if e == nil {
		return // no answer at all: the entry stays unanswered and is recovered
	}
	e.answered = true
	e.code = int(res.Code)
	e.latency = res.Latency
	e.err = res.Error
	e.instance = res.Headers.Get("X-Instance-Id")
	switch res.Code {
	case http.StatusAccepted:
		var o orderView
		if json.Unmarshal(res.Body, &o) == nil {
			e.orderID = o.ID
		}
	case http.StatusServiceUnavailable:
		var p struct {
			Code string `json:"code"`
		}
		e.refused = json.Unmarshal(res.Body, &p) == nil && p.Code == httpx.EOverloaded &&
			res.Headers.Get("Retry-After") != ""
	}
}

// unknown reports whether the system may have accepted e without saying so:
// no order, and no answer, or a server error other than a refusal at
// capacity.
func (e *entry) unknown() bool {
	return e.orderID == "" && !e.refused && (!e.answered || e.code == 0 || e.code >= 500)
}

// stepEntries returns the entries of one step.
func (l *ledger) stepEntries(step int) []*entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*entry
	for _, e := range l.entries {
		if e.step == step {
			out = append(out, e)
		}
	}
	return out
}

func (l *ledger) all() []*entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*entry(nil), l.entries...)
}

// recover asks again, with the same Idempotency-Key and body, for every order
// whose answer was lost or was a server error: the system may have accepted it
// all the same, and the idempotency key makes the retry return that order
// rather than place another.
func (l *ledger) recover(ctx context.Context, es []*entry, timeout time.Duration) (recovered, unknown int) {
	// An overloaded system can leave thousands of answers lost; the retries
	// get the drain's time, no more, and what they do not learn stays unknown.
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var todo []*entry
	for _, e := range es {
		if e.unknown() {
			todo = append(todo, e)
		}
	}
	var mu sync.Mutex
	_ = parallel(context.WithoutCancel(ctx), 32, len(todo), func(i int) error {
		e := todo[i]
		for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
			var o orderView
			code, err := l.post(ctx, e, &o)
			if err == nil && code == http.StatusAccepted {
				mu.Lock()
				e.orderID, e.recovered = o.ID, true
				recovered++
				mu.Unlock()
				return nil
			}
			if err == nil && code/100 == 4 {
				return nil // refused: the system has no order under this key
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		mu.Lock()
		unknown++
		mu.Unlock()
		return nil
	})
	return recovered, unknown
}

func (l *ledger) post(ctx context.Context, e *entry, o *orderView) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.shop.gateway+"/api/orders", strings.NewReader(string(e.body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", e.key)
	res, err := l.shop.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusAccepted {
		return res.StatusCode, json.NewDecoder(res.Body).Decode(o)
	}
	return res.StatusCode, nil
}

// drain waits until every accepted order of es has ended confirmed or
// cancelled, or until timeout, reading each unsettled order from the orders
// app. It returns how many are still unsettled.
func (l *ledger) drain(ctx context.Context, es []*entry, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		var open []*entry
		for _, e := range es {
			if e.orderID != "" && (e.final == nil || !e.final.final()) {
				open = append(open, e)
			}
		}
		if len(open) == 0 {
			return 0
		}
		_ = parallel(ctx, 16, len(open), func(i int) error {
			o, found, err := l.shop.order(ctx, open[i].orderID)
			if err == nil && found {
				open[i].final = &o
			}
			return nil
		})
		still := 0
		for _, e := range open {
			if e.final == nil || !e.final.final() {
				still++
			}
		}
		if still == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return still
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// check is the ledger's verdict on the whole run.
type check struct {
	Accepted  int      `json:"accepted"`
	Recovered int      `json:"recoveredByRetry"`
	Unknown   int      `json:"unknownOutcome"`
	Refused   int      `json:"refusedAtCapacity"`
	Confirmed int      `json:"confirmed"`
	Cancelled int      `json:"cancelled"`
	Lost      int      `json:"lost"`
	Foreign   int      `json:"answeredByAnotherSystem"`
	StockOK   bool     `json:"stockMatches"`
	BalanceOK bool     `json:"balancesMatch"`
	Problems  []string `json:"problems,omitempty"`
	Passed    bool     `json:"passed"`
}

// verify checks the ledger against the system: every accepted order ended
// confirmed or cancelled; for every product, the stock left plus the confirmed
// quantities equals the starting stock; for every customer, the balance left
// plus the confirmed totals equals the starting balance.
func (l *ledger) verify(ctx context.Context) (check, error) {
	var c check
	es := l.all()
	wantStock := map[string]int64{}
	wantBalance := map[string]int64{}
	for _, p := range l.shop.products {
		wantStock[p.ID] = startStock
	}
	for _, cu := range l.shop.customers {
		wantBalance[cu] = startBalance
	}
	var lost []string
	for _, e := range es {
		if e.instance != "" && e.instance != l.shop.ordersInstance {
			c.Foreign++
		}
		if e.refused {
			c.Refused++
		}
		if e.unknown() {
			c.Unknown++
		}
		if e.orderID == "" {
			continue
		}
		c.Accepted++
		if e.recovered {
			c.Recovered++
		}
		switch {
		case e.final != nil && e.final.Status == "confirmed":
			c.Confirmed++
			wantBalance[e.customer] -= e.final.TotalCents
			for _, ln := range e.final.Lines {
				wantStock[ln.ProductID] -= ln.Quantity
			}
		case e.final != nil && e.final.Status == "cancelled":
			c.Cancelled++
		default:
			c.Lost++
			status := "not found"
			if e.final != nil {
				status = e.final.Status
			}
			lost = append(lost, e.orderID+" ("+status+")")
		}
	}
	if c.Lost > 0 {
		sort.Strings(lost)
		if len(lost) > 5 {
			lost = append(lost[:5], "...")
		}
		c.Problems = append(c.Problems, fmt.Sprintf("%d accepted orders never ended confirmed or cancelled: %s", c.Lost, strings.Join(lost, ", ")))
	}
	if c.Unknown > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("%d orders got no answer, and a retry with the same key got none either", c.Unknown))
	}
	if c.Foreign > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("%d orders were answered by an orders instance of another system (Dapr's mDNS is machine-wide)", c.Foreign))
	}

	productIDs := make([]string, len(l.shop.products))
	for i, p := range l.shop.products {
		productIDs[i] = p.ID
	}
	stockBad, err := mismatches(ctx, productIDs, l.shop.stock, wantStock)
	if err != nil {
		return c, fmt.Errorf("read stock: %w", err)
	}
	balanceBad, err := mismatches(ctx, l.shop.customers, l.shop.balance, wantBalance)
	if err != nil {
		return c, fmt.Errorf("read balances: %w", err)
	}
	c.StockOK, c.BalanceOK = len(stockBad) == 0, len(balanceBad) == 0
	for what, bad := range map[string][]string{"stock": stockBad, "balance": balanceBad} {
		if len(bad) > 0 {
			sort.Strings(bad)
			if len(bad) > 3 {
				bad = append(bad[:3], "...")
			}
			c.Problems = append(c.Problems, fmt.Sprintf("%s does not match the ledger: %s", what, strings.Join(bad, "; ")))
		}
	}
	sort.Strings(c.Problems)
	c.Passed = c.Lost == 0 && c.Unknown == 0 && c.StockOK && c.BalanceOK
	return c, nil
}

// save writes one line per order the bench asked for, for the raw record.
func (l *ledger) save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"key", "step", "customer", "code", "latencyMs", "error", "instance", "recovered", "orderId", "status", "placedAt", "settledAt"})
	for _, e := range l.all() {
		status, placed, settled := "", "", ""
		if e.final != nil {
			status = e.final.Status
			placed = e.final.placedAt().Format(time.RFC3339Nano)
			settled = e.final.settledAt().Format(time.RFC3339Nano)
		}
		_ = w.Write([]string{e.key, strconv.Itoa(e.step), e.customer, strconv.Itoa(e.code),
			strconv.FormatFloat(ms(e.latency), 'f', 3, 64), e.err, e.instance, strconv.FormatBool(e.recovered),
			e.orderID, status, placed, settled})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mismatches reads the amount of every id and returns, one line each, those
// that differ from what the ledger wants.
func mismatches(ctx context.Context, ids []string, read func(context.Context, string) (int64, error), want map[string]int64) ([]string, error) {
	var mu sync.Mutex
	var bad []string
	err := parallel(ctx, 16, len(ids), func(i int) error {
		got, err := read(ctx, ids[i])
		if err != nil {
			return err
		}
		if got != want[ids[i]] {
			mu.Lock()
			bad = append(bad, fmt.Sprintf("%s: %d left, ledger says %d", ids[i], got, want[ids[i]]))
			mu.Unlock()
		}
		return nil
	})
	return bad, err
}
