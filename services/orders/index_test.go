package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withPages starts an instance on f whose customer index pages hold size ids.
func withPages(t *testing.T, f *fakeSidecar, size int) *testEnv {
	t.Helper()
	cfg := testConfig()
	cfg.indexPage = size
	return newInstanceWith(t, f, cfg)
}

// placeN places n orders for customer c1 under keys prefix0 to prefix{n-1}
// and returns their ids, in the order they were placed.
func (e *testEnv) placeN(prefix string, n int) []string {
	e.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.place(fmt.Sprintf("%s%d", prefix, i), justPear).ID
	}
	return ids
}

// list lists c1's orders at path and returns their ids and the next page's
// address.
func (e *testEnv) list(path string, header http.Header) ([]string, string) {
	e.t.Helper()
	rec := e.do(http.MethodGet, path, "", header)
	require.Equal(e.t, http.StatusOK, rec.Code, rec.Body.String())
	got := decodeBody[customerOrders](e.t, rec)
	ids := make([]string, len(got.Orders))
	for i, o := range got.Orders {
		ids[i] = o.ID
	}
	return ids, got.Next
}

// newestFirst returns ids reversed.
func newestFirst(ids ...string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[len(ids)-1-i] = id
	}
	return out
}

func TestIndexMovesFullHeadsToPages(t *testing.T) {
	f := newFake()
	e := withPages(t, f, 3)
	ids := e.placeN("k", 8)

	var page []string
	for n, want := range [][]string{ids[0:3], ids[3:6]} {
		v, ok := f.value(pageKey("c1", n+1))
		require.True(t, ok, "page %d", n+1)
		require.NoError(t, json.Unmarshal(v, &page))
		assert.Equal(t, want, page, "page %d", n+1)
	}
	_, ok := f.value(pageKey("c1", 3))
	assert.False(t, ok, "no third page yet")
	head, _ := f.value(customerKey("c1"))
	assert.JSONEq(t, fmt.Sprintf(`{"ids":[%q,%q],"pages":2}`, ids[6], ids[7]), string(head))

	// A placement rewrites the head only: each page was written once.
	assert.Equal(t, []string{pageKey("c1", 1), pageKey("c1", 2)}, f.plainSaves(pageKey("c1", 1), pageKey("c1", 2)))
}

func TestListOrdersPages(t *testing.T) {
	e := withPages(t, newFake(), 3)
	ids := e.placeN("k", 8)

	got, next := e.list("/?customerId=c1", nil)
	assert.Equal(t, newestFirst(ids...), got, "20 by default: all of them")
	assert.Empty(t, next)

	prefix := http.Header{"X-Forwarded-Prefix": {"/api/orders"}}
	got, next = e.list("/?customerId=c1&limit=3", prefix)
	assert.Equal(t, newestFirst(ids[5:8]...), got)
	assert.Equal(t, "/api/orders?customerId=c1&limit=3&before=5", next)

	// An order placed meanwhile does not move the pages after the first.
	ids = append(ids, e.place("late", justPear).ID)
	got, next = e.list("/"+strings.TrimPrefix(next, "/api/orders"), nil)
	assert.Equal(t, newestFirst(ids[2:5]...), got, "from the head's start back into page 1")
	assert.Equal(t, "?customerId=c1&limit=3&before=2", next)
	got, next = e.list("/"+next, nil)
	assert.Equal(t, newestFirst(ids[0:2]...), got)
	assert.Empty(t, next, "nothing older")

	got, _ = e.list("/?customerId=c1&limit=4&before=7", nil)
	assert.Equal(t, newestFirst(ids[3:7]...), got, "across a page and the head")
	got, next = e.list("/?customerId=c1&limit=2&before=1000", nil)
	assert.Equal(t, newestFirst(ids[7:9]...), got, "a position past the end lists the newest")
	assert.Equal(t, "?customerId=c1&limit=2&before=7", next)
	got, next = e.list("/?customerId=nobody&limit=2&before=5", nil)
	assert.Empty(t, got)
	assert.Empty(t, next)
}

// TestIndexReadsTheUnpagedList checks that a customer's list as stored before
// it had pages (a bare JSON array) is read, listed, and paged by the next
// placement.
func TestIndexReadsTheUnpagedList(t *testing.T) {
	f := newFake()
	ids := withPages(t, f, indexPageSize).placeN("k", 5)
	f.set(t, customerKey("c1"), ids)
	e := withPages(t, f, 3)

	got, _ := e.list("/?customerId=c1", nil)
	assert.Equal(t, newestFirst(ids...), got)

	ids = append(ids, e.place("new", justPear).ID)
	v, ok := f.value(pageKey("c1", 1))
	require.True(t, ok)
	assert.JSONEq(t, fmt.Sprintf("[%q,%q,%q]", ids[0], ids[1], ids[2]), string(v))
	head, _ := f.value(customerKey("c1"))
	assert.JSONEq(t, fmt.Sprintf(`{"ids":[%q,%q,%q],"pages":1}`, ids[3], ids[4], ids[5]), string(head))
	got, _ = e.list("/?customerId=c1", nil)
	assert.Equal(t, newestFirst(ids...), got)
}

// TestIndexPagesFromTwoInstances places orders for one customer from two
// instances at once, across several page boundaries: every order is listed
// exactly once, and every page is full and in its place.
func TestIndexPagesFromTwoInstances(t *testing.T) {
	f := newFake()
	a, b := withPages(t, f, 3), withPages(t, f, 3)
	const n = 20
	placed := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			e := a
			if i%2 == 1 {
				e = b
			}
			rec := e.post(fmt.Sprintf("k%d", i), justPear)
			if assert.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String()) {
				placed[i] = decodeBody[order](t, rec).ID
			}
		}(i)
	}
	wg.Wait()

	got, next := a.list("/?customerId=c1&limit=100", nil)
	assert.Empty(t, next)
	assert.ElementsMatch(t, placed, got)
	var paged []string
	for before := n; before > 0; before -= 3 {
		ids, _ := b.list(fmt.Sprintf("/?customerId=c1&limit=3&before=%d", before), nil)
		paged = append(paged, ids...)
	}
	assert.Equal(t, got, paged, "page by page lists what one page lists")
	head, _ := f.value(customerKey("c1"))
	assert.JSONEq(t, fmt.Sprintf(`{"ids":[%q,%q],"pages":6}`, got[1], got[0]), string(head))
}

func TestListOrdersShowsAnOrderOnce(t *testing.T) {
	e := newTestEnv(t)
	first := e.place("k1", justPear)
	second := e.place("k2", justPear)
	// A placement retried after its id reached the list, but before its order
	// was saved, may add the id again.
	e.fake.set(t, customerKey("c1"), storedIndex{IDs: []string{first.ID, second.ID, first.ID}})
	got, _ := e.list("/?customerId=c1", nil)
	assert.Equal(t, []string{first.ID, second.ID}, got)
}

func TestListOrdersRejectsBadPaging(t *testing.T) {
	e := withPages(t, newFake(), 3)
	e.placeN("k", 4)
	writes := e.fake.version(customerKey("c1"))
	for _, tt := range []struct{ query, detail string }{
		{"limit=0", `limit must be a whole number from 1 to 100, not "0"`},
		{"limit=101", `limit must be a whole number from 1 to 100, not "101"`},
		{"limit=ten", `limit must be a whole number from 1 to 100, not "ten"`},
		{"limit=", `limit must be a whole number from 1 to 100, not ""`},
		{"limit=2.5", `limit must be a whole number from 1 to 100`},
		{"before=0", `before must be a whole number of at least 1, not "0"`},
		{"before=-3", `before must be a whole number of at least 1, not "-3"`},
		{"before=last", `before must be a whole number of at least 1, not "last"`},
		{"before=99999999999999999999", `before must be a whole number of at least 1`},
	} {
		t.Run(tt.query, func(t *testing.T) {
			assertProblem(t, e.do(http.MethodGet, "/?customerId=c1&"+tt.query, "", nil), http.StatusBadRequest, tt.detail)
		})
	}
	assert.Equal(t, writes, e.fake.version(customerKey("c1")), "nothing changed")
}

func TestListOrdersIndexFailures(t *testing.T) {
	for _, tt := range []struct {
		name  string
		spoil func(t *testing.T, f *fakeSidecar)
	}{
		{"page unreadable", func(_ *testing.T, f *fakeSidecar) {
			f.fail = failOn("GetBulkState", pageKey("c1", 1))
		}},
		{"page missing", func(_ *testing.T, f *fakeSidecar) {
			f.mu.Lock()
			defer f.mu.Unlock()
			delete(f.entries, pageKey("c1", 1))
		}},
		{"page short", func(t *testing.T, f *fakeSidecar) { f.set(t, pageKey("c1", 1), []string{"a"}) }},
		{"page corrupt", func(_ *testing.T, f *fakeSidecar) { f.setBytes(pageKey("c1", 1), []byte(`{`)) }},
		{"head corrupt", func(_ *testing.T, f *fakeSidecar) { f.setBytes(customerKey("c1"), []byte(`{"ids":1}`)) }},
		{"head counts negative pages", func(_ *testing.T, f *fakeSidecar) {
			f.setBytes(customerKey("c1"), []byte(`{"ids":[],"pages":-1}`))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := withPages(t, newFake(), 3)
			e.placeN("k", 4)
			tt.spoil(t, e.fake)
			rec := e.do(http.MethodGet, "/?customerId=c1&limit=4", "", nil)
			assertProblem(t, rec, http.StatusInternalServerError, "internal error")
			assert.NotContains(t, rec.Body.String(), "page", "store details stay in the log")
		})
	}
}

// TestPlaceOrderWhenAPageCannotBeSaved checks that a placement that cannot
// move a full head to its page fails before it changes the head or saves the
// order, and that its retry finishes it.
func TestPlaceOrderWhenAPageCannotBeSaved(t *testing.T) {
	f := newFake()
	e := withPages(t, f, 3)
	ids := e.placeN("k", 3)
	head := f.version(customerKey("c1"))
	f.fail = failOn("SaveState", pageKey("c1", 1))

	assertProblem(t, e.post("next", justPear), http.StatusInternalServerError, "internal error")
	assert.Equal(t, head, f.version(customerKey("c1")), "the head is unchanged")
	assert.Len(t, f.transactions(), 3, "no order saved")

	f.fail = nil
	ids = append(ids, e.place("next", justPear).ID)
	got, _ := e.list("/?customerId=c1", nil)
	assert.Equal(t, newestFirst(ids...), got)
}

// BenchmarkPlaceOrderAfterHistory places an order for a customer who placed
// history orders before: what a placement costs the orders service (the
// sidecar an in-memory fake) as a customer's list grows. Every placement finds
// the list as seedHistory left it.
func BenchmarkPlaceOrderAfterHistory(b *testing.B) {
	for _, history := range []int{0, 1_000, 10_000} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			f := newFake()
			head := seedHistory(b, f, "c1", history)
			e := newInstanceWith(b, f, testConfig())
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				f.setBytes(customerKey("c1"), head)
				b.StartTimer()
				e.place(fmt.Sprintf("k%d", i), justPear)
			}
		})
	}
}

// seedHistory stores a list of n made-up order ids for customerID as
// placements leave it, whose head is full when n is a multiple of the page
// size (the next placement writes a page), and returns the head as stored.
func seedHistory(b *testing.B, f *fakeSidecar, customerID string, n int) []byte {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i)
	}
	pages := max(n-1, 0) / indexPageSize
	for p := 1; p <= pages; p++ {
		f.set(b, pageKey(customerID, p), ids[(p-1)*indexPageSize:p*indexPageSize])
	}
	head, err := json.Marshal(storedIndex{IDs: ids[pages*indexPageSize:], Pages: pages})
	require.NoError(b, err)
	f.setBytes(customerKey(customerID), head)
	return head
}
