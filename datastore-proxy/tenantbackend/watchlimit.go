package tenantbackend

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/k3s-io/kine/pkg/server"
)

// A tenant has at most MaxWatches watches open. The proxy's watch stream
// reserves a place when it reads a create request (ReserveWatch), so that
// it can refuse the watch in etcd's own way, in the create response; etcd's
// client drops the reason of a watch canceled after it was created. The
// reservation rides to Backend.Watch in the context kine passes on, as the
// watch range does (watchrange.go), and the watch holds the place until
// it ends. A watch that arrives without a reservation takes a place
// itself, and is refused after its creation if there is none.

// Reservation is a place among a tenant's MaxWatches.
type Reservation struct {
	b     *Backend
	state atomic.Int32 // 0: held; 1: taken by a watch; 2: dropped
}

// ReserveWatch takes a place for a watch about to be created, or refuses
// it when the tenant already has its MaxWatches open or reserved.
func (b *Backend) ReserveWatch() (*Reservation, error) {
	if err := b.reserve(); err != nil {
		return nil, err
	}
	return &Reservation{b: b}, nil
}

// Drop gives the place back, unless a watch took it.
func (r *Reservation) Drop() {
	if r.state.CompareAndSwap(0, 2) {
		r.b.watches.Add(-1)
	}
}

// Release gives the place back, once, whether or not a watch took it: a
// watch relayed to an etcd stream (Stream) holds its reservation itself
// until it ends.
func (r *Reservation) Release() {
	if r.state.CompareAndSwap(0, 2) || r.state.CompareAndSwap(1, 2) {
		r.b.watches.Add(-1)
	}
}

// Held reports whether the place is still held for a watch to take.
func (r *Reservation) Held() bool { return r.state.Load() == 0 }

type reservationKey struct{}

// WithReservation returns ctx carrying a reservation for Backend.Watch.
func WithReservation(ctx context.Context, r *Reservation) context.Context {
	return context.WithValue(ctx, reservationKey{}, r)
}

// takeWatch takes the place reserved in ctx, or a new one.
func (b *Backend) takeWatch(ctx context.Context) error {
	if r, ok := ctx.Value(reservationKey{}).(*Reservation); ok && r.b == b && r.state.CompareAndSwap(0, 1) {
		return nil
	}
	return b.reserve()
}

func (b *Backend) reserve() error {
	n := b.watches.Add(1)
	if limit := b.limits().MaxWatches; limit > 0 && n > limit {
		b.watches.Add(-1)
		if b.OnWatchRefused != nil {
			b.OnWatchRefused()
		}
		return fmt.Errorf("kplex: tenant %s has %d watches open, its limit (maxWatches); close some and watch again", b.space.Tenant(), limit)
	}
	return nil
}

// refuseWatch is a watch that ends at once with err (kine cancels it with
// err as the reason).
func (b *Backend) refuseWatch(ctx context.Context, err error) server.WatchResult {
	eventc := make(chan server.EventBatch)
	close(eventc)
	errc := make(chan error, 1)
	errc <- err
	rev, _ := b.inner.CurrentRevision(ctx)
	return server.WatchResult{CurrentRevision: rev, Eventc: eventc, Errorc: errc}
}
