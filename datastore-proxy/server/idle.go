package server

import (
	"context"
	"time"

	"google.golang.org/grpc"
)

// What the proxy keeps of a tenant (its bridge, its counted usage, its
// rate limiter; per-tenant metric series, through Options.OnForget) stays
// until the tenant has been idle, with no request and no stream open, for
// Options.ForgetIdle: a tenant deleted for good, whose apiserver is gone,
// no longer shows in the metrics with its last figures, and hundreds of
// tenants coming and going do not pile up in memory. A live apiserver is
// never idle that long (it renews leases every few seconds and keeps its
// watches open). A forgotten tenant's next request sets it up again, and
// its next write with limits counts its keys again first (quota).

// usage is a tenant's requests and streams in progress, and when its last
// one ended (or began).
type usage struct {
	open int
	last time.Time
}

// begin records a request or stream of tenant in progress; end must follow.
func (s *Server) begin(tenant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uses[tenant]
	if u == nil {
		u = &usage{}
		s.uses[tenant] = u
	}
	u.open++
	u.last = time.Now()
}

func (s *Server) end(tenant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.uses[tenant]; u != nil {
		u.open--
		u.last = time.Now()
	}
}

// TrackUnary is the unary interceptor that keeps each tenant's requests in
// progress known (ForgetIdle). It follows the Identify interceptors and
// goes before any that records the tenant's metrics (forgetIdle says why).
func (s *Server) TrackUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	tenant, err := TenantFromContext(ctx)
	if err != nil {
		return handler(ctx, req) // refused further on, and counted
	}
	s.begin(tenant)
	defer s.end(tenant)
	return handler(ctx, req)
}

// TrackStream is TrackUnary for streams, open for their whole life.
func (s *Server) TrackStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	tenant, err := TenantFromContext(ss.Context())
	if err != nil {
		return handler(srv, ss)
	}
	s.begin(tenant)
	defer s.end(tenant)
	return handler(srv, ss)
}

// forgetIdle forgets every tenant idle for at least idle at now, telling
// Options.OnForget of each under the lock that new requests take first
// (begin): a request that comes after is counted anew, never dropped with
// the forgotten series.
func (s *Server) forgetIdle(now time.Time, idle time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, u := range s.uses {
		if u.open > 0 || now.Sub(u.last) < idle {
			continue
		}
		delete(s.uses, name)
		delete(s.tenants, name)
		delete(s.limiters, name)
		if s.onForget != nil {
			s.onForget(name)
		}
	}
}

// ForgetIdle forgets idle tenants (Options.ForgetIdle) until ctx ends.
func (s *Server) ForgetIdle(ctx context.Context) {
	if s.forgetAfter <= 0 {
		return
	}
	tick := time.NewTicker(min(max(s.forgetAfter/4, 10*time.Millisecond), time.Minute))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.forgetIdle(now, s.forgetAfter)
		}
	}
}
