package server

import (
	"context"
	"time"

	"google.golang.org/grpc"

	"kplex.dev/datastore-proxy/quota"
)

// What the proxy keeps of a tenant (its bridge, its rate limiter, its
// watch hub; per-tenant metric series, through Options.OnForget) stays
// until the tenant has been idle, with no request and no stream open, for
// Options.ForgetIdle: a tenant deleted for good, whose apiserver is gone,
// no longer shows in the metrics with its last figures, and hundreds of
// tenants coming and going do not pile up in memory. A live apiserver is
// never idle that long (it renews leases every few seconds and keeps its
// watches open). A forgotten tenant's next request sets it up again.
//
// Its counted usage, a few numbers, is kept for dormantUsage more: a
// tenant back within that (a paused virtual cluster resumed) has its
// writes checked against the count it had while a recount runs in the
// background, as before it was forgotten, rather than wait for a count of
// its whole space; and a recount it started is not left running for
// nobody. After that, with no recount running, it goes too, and the
// tenant's next write with limits waits for a new count (quota).
// A tenant whose rate limiter has not refilled is not forgotten yet: a
// new limiter would hand it a full burst early.

// dormantUsage is how long a forgotten tenant's counted usage is kept.
var dormantUsage = 24 * time.Hour

// dormant is a forgotten tenant's counted usage, kept since.
type dormant struct {
	usage *quota.Usage
	since time.Time
}

// usage is a tenant's requests and streams in progress, and when its last
// one ended (or began).
type usage struct {
	open int
	last time.Time
}

// begin records a request or stream of tenant in progress; end must follow.
func (s *Server) begin(tenant string) {
	if s.forgetAfter <= 0 {
		return
	}
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
	if s.forgetAfter <= 0 {
		return
	}
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
		if lim := s.limiters[name]; lim != nil && lim.TokensAt(now) < float64(lim.Burst()) {
			continue
		}
		if st := s.tenants[name]; st != nil {
			s.dormant[name] = &dormant{usage: st.usage, since: now}
		}
		delete(s.uses, name)
		delete(s.tenants, name)
		delete(s.limiters, name)
		if s.onForget != nil {
			s.onForget(name)
		}
	}
	for name, d := range s.dormant {
		if now.Sub(d.since) >= dormantUsage && !d.usage.Scanning() {
			delete(s.dormant, name)
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
