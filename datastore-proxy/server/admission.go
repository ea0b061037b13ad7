package server

import (
	"context"
	"math"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// maxRateWait is how long a request over its tenant's rate waits for a
// token before it is refused with "too many requests".
const maxRateWait = time.Second

// Admit is the unary interceptor that makes tenants share the proxy: each
// request first passes its tenant's rate limit (requestsPerSecond/burst
// from the tenant config), then waits for a backend slot, handed out to the
// tenant served least recently (fairshare). Writes have slots of their
// own, fewer where the backend serialises writes anyway (SQLite has one
// writer): a fair order only helps where the queue is, so the write queue
// is kept in the proxy rather than in the database's lock. Watches and
// lease keep-alives hold no slot; a RangeStream, a list in chunks, is
// admitted as a read (rangestream.go).
func (s *Server) Admit(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	tenant, err := TenantFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.rateLimit(ctx, tenant); err != nil {
		return nil, err
	}
	if txn, ok := req.(*etcdserverpb.TxnRequest); ok {
		// A transaction refused for its shape is refused before it
		// waits for its tenant's first count or a slot (kv.go).
		if err := txnRefusal(txn); err != nil {
			return nil, err
		}
	}
	write := isWrite(info.FullMethod, req)
	if write && mayAdd(req) {
		// A write of a tenant with limits waits for its first count (a
		// read of its whole space) before it takes a slot, not while it
		// holds one: holding it, the write kept every other tenant's
		// writes waiting behind the count (SQLite has one slot), and the
		// fair share charged the wait to the tenant as backend time.
		// Deletes need no count, and do not wait for one.
		st, err := s.tenant(ctx)
		if err != nil {
			return nil, err
		}
		if err := st.backend.Counted(ctx); err != nil {
			return nil, err
		}
	}
	release, err := s.slot(ctx, tenant, write)
	if err != nil {
		return nil, err
	}
	defer release()
	return handler(ctx, req)
}

// rateLimit waits for a token of tenant's rate, at most maxRateWait, or
// refuses with "too many requests". A caller that gives up meanwhile gets
// its own context's status, not a refusal (its metrics said refused).
func (s *Server) rateLimit(ctx context.Context, tenant string) error {
	if lim := s.limiter(tenant); lim != nil {
		wctx, cancel := context.WithTimeout(ctx, maxRateWait)
		err := lim.Wait(wctx)
		cancel()
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return status.FromContextError(cerr).Err()
			}
			return rpctypes.ErrGRPCRequestTooManyRequests
		}
	}
	return nil
}

// slot waits for a read or write slot for tenant; release gives it back.
func (s *Server) slot(ctx context.Context, tenant string, write bool) (release func(), err error) {
	sched := s.fair
	if write {
		sched = s.fairWrites
	}
	if s.onSlotWait == nil {
		return sched.Acquire(ctx, tenant)
	}
	start := time.Now()
	release, err = sched.Acquire(ctx, tenant)
	s.onSlotWait(tenant, write, time.Since(start))
	return release, err
}

// limiter is the tenant's rate limiter under the current limits, or nil
// when it has none.
func (s *Server) limiter(tenant string) *rate.Limiter {
	l := s.limits.For(tenant)
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.RequestsPerSecond <= 0 {
		delete(s.limiters, tenant)
		return nil
	}
	burst := l.Burst
	if burst <= 0 {
		burst = int(math.Max(1, math.Ceil(l.RequestsPerSecond)))
	}
	lim, ok := s.limiters[tenant]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(l.RequestsPerSecond), burst)
		s.limiters[tenant] = lim
	} else if lim.Limit() != rate.Limit(l.RequestsPerSecond) || lim.Burst() != burst {
		lim.SetLimit(rate.Limit(l.RequestsPerSecond))
		lim.SetBurst(burst)
	}
	return lim
}

// mayAdd tells whether req can store keys or bytes: a put, or a
// transaction with one.
func mayAdd(req any) bool {
	switch r := req.(type) {
	case *etcdserverpb.PutRequest:
		return true
	case *etcdserverpb.TxnRequest:
		return findPut(r, func(*etcdserverpb.PutRequest) bool { return true }) != nil
	}
	return false
}

// isWrite reports whether req, a request of method, writes: it then takes
// a write slot. A transaction that only reads (compares and ranges) is a
// read.
func isWrite(method string, req any) bool {
	switch method {
	case "/etcdserverpb.KV/Put", "/etcdserverpb.KV/DeleteRange", "/etcdserverpb.KV/Compact":
		return true
	case "/etcdserverpb.KV/Txn":
		r, ok := req.(*etcdserverpb.TxnRequest)
		return !ok || txnWrites(r)
	}
	return false
}
