package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/daprshop/daprshop/internal/runner"
)

// Starting stock and balance: far more than any run orders, so that every order
// can be confirmed and the rate, not the stock, is what is measured.
const (
	startStock   = 1_000_000_000
	startBalance = 100_000_000_000
)

// shop is the bench's view of the running system: the apps it sets up and
// checks directly on their app ports, and the gateway its load goes through.
// Talking to the apps directly for setup and checks keeps Dapr's machine-wide
// name resolution from ever sending them to another system's instances.
type shop struct {
	gateway   string
	orders    string
	catalog   string
	inventory string
	payments  string
	// ordersInstance is the X-Instance-Id of the system's orders, to tell an
	// answer of another system's orders (reached through mDNS) from its own.
	ordersInstance string
	client         *http.Client

	products  []productSpec
	customers []string
}

type productSpec struct {
	ID         string
	PriceCents int64
}

func newShop(sys *runner.System) *shop {
	return &shop{
		gateway:        sys.App("gateway").AppURL(),
		orders:         sys.App("orders").AppURL(),
		catalog:        sys.App("catalog").AppURL(),
		inventory:      sys.App("inventory").AppURL(),
		payments:       sys.App("payments").AppURL(),
		ordersInstance: sys.App("orders").ID,
		client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
		}},
	}
}

// setUp creates the products (fixed ids under prefix, so that the catalog does
// not grow run after run) and the run's customers, with ample stock and balance.
// Customers are new every run because orders keeps a list of each customer's
// orders, which would otherwise grow across runs.
func (s *shop) setUp(ctx context.Context, prefix, runID string, products, customers int) error {
	s.products = nil
	for i := 0; i < products; i++ {
		p := productSpec{ID: fmt.Sprintf("%s-p%02d", prefix, i), PriceCents: int64(100 + 25*i)}
		s.products = append(s.products, p)
		body := map[string]any{"name": "bench product " + p.ID, "priceCents": p.PriceCents, "currency": "EUR"}
		if err := s.do(ctx, http.MethodPut, s.catalog+"/products/"+p.ID, body, nil); err != nil {
			return err
		}
		if err := s.do(ctx, http.MethodPut, s.inventory+"/stock/"+p.ID, map[string]any{"available": startStock}, nil); err != nil {
			return err
		}
	}
	s.customers = make([]string, customers)
	for i := range s.customers {
		s.customers[i] = fmt.Sprintf("%s-%s-c%03d", prefix, runID, i)
	}
	return parallel(ctx, 16, len(s.customers), func(i int) error {
		return s.do(ctx, http.MethodPut, s.payments+"/accounts/"+s.customers[i], map[string]any{"balanceCents": startBalance}, nil)
	})
}

// stock reads the available stock of a product.
func (s *shop) stock(ctx context.Context, productID string) (int64, error) {
	var v struct {
		Available int64 `json:"available"`
	}
	err := s.do(ctx, http.MethodGet, s.inventory+"/stock/"+productID, nil, &v)
	return v.Available, err
}

// balance reads a customer's balance.
func (s *shop) balance(ctx context.Context, customerID string) (int64, error) {
	var v struct {
		BalanceCents int64 `json:"balanceCents"`
	}
	err := s.do(ctx, http.MethodGet, s.payments+"/accounts/"+customerID, nil, &v)
	return v.BalanceCents, err
}

// order reads an order from the orders app. found is false for a 404.
func (s *shop) order(ctx context.Context, orderID string) (o orderView, found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.orders+"/"+orderID, nil)
	if err != nil {
		return o, false, err
	}
	res, err := s.client.Do(req)
	if err != nil {
		return o, false, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return o, false, err
	}
	switch res.StatusCode {
	case http.StatusOK:
		return o, true, json.Unmarshal(body, &o)
	case http.StatusNotFound:
		return o, false, nil
	}
	return o, false, fmt.Errorf("GET order %s: %s: %s", orderID, res.Status, body)
}

// do sends in as JSON (when not nil) and decodes a 2xx answer into out (when
// not nil).
func (s *shop) do(ctx context.Context, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, res.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// parallel runs fn for 0..n-1 on workers goroutines and returns the first error.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil || i >= n || ctx.Err() != nil
				mu.Unlock()
				if stop {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// orderView is an order as GET /orders/{id} and POST /orders show it.
type orderView struct {
	ID         string     `json:"id"`
	CustomerID string     `json:"customerId"`
	Status     string     `json:"status"`
	Reason     string     `json:"reason"`
	Lines      []lineView `json:"lines"`
	TotalCents int64      `json:"totalCents"`
	CreatedAt  time.Time  `json:"createdAt"`
	History    []struct {
		Status string    `json:"status"`
		At     time.Time `json:"at"`
	} `json:"history"`
}

type lineView struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
}

func (o orderView) final() bool { return o.Status == "confirmed" || o.Status == "cancelled" }

// settledAt is when the order reached its final status, by its own history.
func (o orderView) settledAt() time.Time {
	for i := len(o.History) - 1; i >= 0; i-- {
		if o.History[i].Status == o.Status {
			return o.History[i].At
		}
	}
	return time.Time{}
}

// placedAt is when the order was saved pending, by its own history.
func (o orderView) placedAt() time.Time {
	if len(o.History) > 0 {
		return o.History[0].At
	}
	return o.CreatedAt
}
