package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/daprshop/daprshop/internal/events"
	"github.com/daprshop/daprshop/internal/httpx"
)

// headerIdempotencyKey names the header that makes POST /orders safe to retry.
const headerIdempotencyKey = "Idempotency-Key"

// handlePlaceOrder places an order: POST /orders with an Idempotency-Key. It
// answers 202 Accepted, because the saga decides the order's fate later.
func handlePlaceOrder(log *slog.Logger, svc *orders) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, err := idempotencyKey(r)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		var req placeRequest
		if err := httpx.DecodeJSON(w, r, &req, httpx.DefaultMaxBody); err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		if err := req.validate(); err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		o, err := svc.place(r.Context(), key, req)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		w.Header().Set("Location", httpx.ForwardedPrefix(r)+"/"+o.ID)
		httpx.WriteJSON(w, http.StatusAccepted, o)
	}
}

func idempotencyKey(r *http.Request) (string, error) {
	values := r.Header.Values(headerIdempotencyKey)
	if len(values) == 0 {
		return "", httpx.Errorf(httpx.EPreconditionReq, "the %s header is required: send a unique key per order, and the same key when you retry", headerIdempotencyKey)
	}
	if !validIdempotencyKey(values[0]) {
		return "", httpx.Errorf(httpx.EInvalid, "the %s header must be 1 to %d printable ASCII characters", headerIdempotencyKey, maxIdemKeyLen)
	}
	return values[0], nil
}

// handleGetOrder answers GET /orders/{id}.
func handleGetOrder(log *slog.Logger, svc *orders) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := mux.Vars(r)["id"]
		if !validOrderID(id) {
			httpx.WriteError(w, r, log, httpx.Errorf(httpx.EInvalid, "malformed order id %q: an order id is %d hex digits", id, orderIDHexSize))
			return
		}
		o, _, found, err := svc.readOrder(r.Context(), id)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		if !found {
			httpx.WriteError(w, r, log, httpx.Errorf(httpx.ENotFound, "order %s not found", id))
			return
		}
		httpx.WriteJSON(w, http.StatusOK, o)
	}
}

// Paging of a customer's orders.
const (
	defaultListLimit = 20
	maxListLimit     = 100
)

// customerOrders is the answer to GET /orders?customerId=...: a page of the
// customer's orders, newest first, and the address of the next (older) page
// when there is one.
type customerOrders struct {
	CustomerID string  `json:"customerId"`
	Orders     []order `json:"orders"`
	Next       string  `json:"next,omitempty"`
}

// handleListOrders answers GET /orders?customerId=...[&limit=n][&before=p]:
// the customer's latest limit orders placed before position p of their list
// (all of it by default), newest first. Positions count the customer's orders
// from 0, in the order they were placed, so a page's next link stays right
// while new orders arrive.
func handleListOrders(log *slog.Logger, svc *orders) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		customerID := q.Get("customerId")
		if customerID == "" {
			httpx.WriteError(w, r, log, httpx.Errorf(httpx.EInvalid, "the customerId query parameter is required"))
			return
		}
		if !validName(customerID) {
			httpx.WriteError(w, r, log, httpx.Errorf(httpx.EInvalid, "customerId must be 1 to %d characters of A-Z, a-z, 0-9, '.', '_' or '-'", maxIDLen))
			return
		}
		limit, err := httpx.QueryInt(q, "limit", defaultListLimit, 1, maxListLimit)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		before, err := httpx.QueryInt(q, "before", math.MaxInt, 1, math.MaxInt)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		list, next, err := svc.listOrders(r.Context(), customerID, limit, before)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		answer := customerOrders{CustomerID: customerID, Orders: list}
		if next > 0 {
			answer.Next = fmt.Sprintf("%s?customerId=%s&limit=%d&before=%d", httpx.ForwardedPrefix(r), customerID, limit, next)
		}
		httpx.WriteJSON(w, http.StatusOK, answer)
	}
}

// listOrders returns the customer's latest limit orders before position
// before of their list, newest first, and the position to list the next page
// before (0 when no older order is left). An id whose order was never saved is
// skipped, and an order listed twice (a placement retried after its id was
// indexed) is shown once.
func (s *orders) listOrders(ctx context.Context, customerID string, limit, before int) ([]order, int, error) {
	x, err := s.readIndex(ctx, customerID)
	if err != nil {
		return nil, 0, err
	}
	to := min(before, x.len(s.cfg.indexPage))
	from := max(to-limit, 0)
	ids, err := s.readIndexRange(ctx, customerID, x, from, to)
	if err != nil {
		return nil, 0, err
	}
	newest := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		if !seen[ids[i]] {
			seen[ids[i]] = true
			newest = append(newest, ids[i])
		}
	}
	list, err := s.readOrders(ctx, newest)
	if err != nil {
		return nil, 0, err
	}
	return list, from, nil
}

// place places the order req under the Idempotency-Key key, or returns the order
// already placed under it.
//
// The key is claimed with a create-if-absent write of the request's hash and a
// fresh order id, so that exactly one request, across all instances, owns the
// order. The others read the claim: another request under the same key is
// refused, and the same request waits for the owner's order. If the owner never
// saves it (it failed or died), a waiting request takes the claim over and saves
// the order under the claimed id itself.
//
// The claim is read before the catalog is asked, so that a retry of a placed
// order is answered even while the catalog is down, and written only after the
// order is priced, so that a request the catalog refuses leaves nothing behind.
// It is written together with the new order's id in its customer's index and
// its bucket of open orders (createAtOnce); when one of those writes loses, the
// order is placed step by step from the claim on.
//
// Admission comes first: a request that gets no place is refused before it
// costs the store anything, since under overload the refusals are most of the
// requests. A retry of an order already placed is refused then too, and
// learns its order when it comes back.
func (s *orders) place(ctx context.Context, key string, req placeRequest) (order, error) {
	admitted, err := s.admit.acquire(ctx)
	if err != nil {
		return order{}, err
	}
	// A request that ends up waiting for another request's order leaves the
	// bound before it waits, below; this release is then a no-op.
	defer admitted.release()

	ck := claimKey(key)
	hash := req.hash()
	held, etag, found, f, err := s.readClaimAndFresh(ctx, ck, req.CustomerID, httpx.NewID())
	if err != nil {
		return order{}, err
	}
	if found {
		if held.RequestHash != hash {
			return order{}, errKeyReused
		}
		o, _, ok, err := s.readOrder(ctx, held.OrderID)
		if err != nil {
			return order{}, err
		}
		if ok {
			return o, nil
		}
	}

	p, err := s.price(ctx, req.Items)
	if err != nil {
		return order{}, err
	}

	if !found {
		now := s.now().UTC()
		c := claim{RequestHash: hash, OrderID: f.orderID, ClaimedAt: now}
		o := newOrder(c.OrderID, req, p, now)
		if placed, done, err := s.createAtOnce(ctx, ck, c, o, f); done {
			return placed, err
		}
		err := s.saveClaim(ctx, ck, c, "")
		if err == nil {
			// The id is new and now ours alone: no order can exist under it.
			return s.create(ctx, o, f)
		}
		// Tell a claim that someone else just made from a failing store.
		var rerr error
		held, etag, found, rerr = s.readClaim(ctx, ck)
		if rerr != nil {
			return order{}, errors.Join(err, rerr)
		}
		if !found {
			return order{}, err
		}
		if held.OrderID == c.OrderID {
			// The claim was saved and only its answer was lost: the order is ours,
			// though a waiting retry may have taken it over and saved it since.
			return s.create(ctx, o, nil)
		}
		if held.RequestHash != hash {
			return order{}, errKeyReused
		}
	}
	// Waiting costs little and await bounds it: the wait holds no place that a
	// new order could take, and its time is not the placement's.
	admitted.release()
	return s.await(ctx, ck, held, etag, req, p)
}

// errKeyReused answers a request whose Idempotency-Key was already used for a
// different order.
var errKeyReused = httpx.Errorf(httpx.EUnprocessable,
	"the %s was already used for a different order; use a new key for a new order", headerIdempotencyKey)

// await waits for the order that the holder of the claim is saving. When no
// order appears within claimWait of this request seeing the claim as it is, the
// request takes the claim over with a compare-and-swap, so that of all the
// requests waiting only one finishes the order, and saves it under the claimed
// id. A takeover by another request restarts the wait.
func (s *orders) await(ctx context.Context, ck string, held claim, etag string, req placeRequest, p priced) (order, error) {
	begin := time.Now()
	since := begin
	for {
		o, _, found, err := s.readOrder(ctx, held.OrderID)
		if err != nil {
			return order{}, err
		}
		if found {
			return o, nil
		}
		if time.Since(since) >= s.cfg.claimWait {
			next := held
			next.ClaimedAt = s.now().UTC()
			err := s.saveClaim(ctx, ck, next, etag)
			if err == nil {
				s.log.WarnContext(ctx, "taking over an unfinished order", "orderId", held.OrderID,
					"claimedAt", held.ClaimedAt)
				return s.create(ctx, newOrder(held.OrderID, req, p, s.now().UTC()), nil)
			}
			cur, curETag, found, rerr := s.readClaim(ctx, ck)
			if rerr != nil {
				return order{}, errors.Join(err, rerr)
			}
			if !found || curETag == etag {
				return order{}, err
			}
			held, etag, since = cur, curETag, time.Now()
		}
		// Past three waits the order is evidently not being placed now (its
		// takers keep failing), so the client is told to retry rather than held.
		if time.Since(begin) >= 3*s.cfg.claimWait {
			return order{}, httpx.Errorf(httpx.EUnavailable,
				"the order for this %s is still being placed; retry with the same key shortly", headerIdempotencyKey)
		}
		select {
		case <-ctx.Done():
			return order{}, fmt.Errorf("wait for order %s: %w", held.OrderID, ctx.Err())
		case <-time.After(s.cfg.pollInterval):
		}
	}
}

// create saves the new pending order o with its OrderPlaced event, step by
// step: its id into its customer's index and its bucket of open orders, then
// the order. If the order already exists, because another request finished it,
// create returns that order and writes nothing. f, when not nil, says that o's
// id was just claimed by this request, so that no order can exist and the store
// need not be asked, and holds what was read with the claim.
func (s *orders) create(ctx context.Context, o order, f *fresh) (order, error) {
	orderID, now := o.ID, o.CreatedAt
	unlock := s.locks.Lock(orderKey(orderID))
	defer unlock()
	var idx *index
	if f != nil {
		idx = &f.index
	} else {
		existing, _, found, err := s.readOrder(ctx, orderID)
		if err != nil {
			return order{}, err
		}
		if found {
			return existing, nil
		}
	}
	if err := s.addToIndex(ctx, o.CustomerID, o.ID, idx); err != nil {
		return order{}, err
	}
	if s.cfg.reconcileInterval > 0 {
		if err := s.markMinute(ctx, now); err != nil {
			return order{}, err
		}
		if err := s.addToOpen(ctx, o.ID, now); err != nil {
			return order{}, err
		}
	}
	return s.saveNew(ctx, o)
}

// newOrder is the pending order orderID of req, priced as p, placed at now.
func newOrder(orderID string, req placeRequest, p priced, now time.Time) order {
	return order{
		ID:         orderID,
		CustomerID: req.CustomerID,
		Status:     events.StatusPending,
		Lines:      p.lines,
		TotalCents: p.totalCents,
		Currency:   p.currency,
		CreatedAt:  now,
		History:    []change{{Status: events.StatusPending, At: now}},
	}
}

// saveNew saves the new order o with its OrderPlaced event, once its id is in
// its customer's index and its bucket of open orders.
func (s *orders) saveNew(ctx context.Context, o order) (order, error) {
	if err := s.writeOrder(ctx, o); err != nil {
		// The transaction may have been applied even though its answer was lost.
		existing, _, found, rerr := s.readOrder(ctx, o.ID)
		if rerr == nil && found {
			return existing, nil
		}
		return order{}, errors.Join(err, rerr)
	}
	s.log.InfoContext(ctx, "order placed", "orderId", o.ID, "customerId", o.CustomerID,
		"totalCents", o.TotalCents, "currency", o.Currency)
	return o, nil
}
