package tenantbackend

import (
	"fmt"
	"sync/atomic"
)

// A tenant has at most MaxWatches watches open. Its watch hub reserves a
// place when it reads a create request (ReserveWatch), so that it can
// refuse the watch in etcd's own way, in the create response (etcd's
// client drops the reason of a watch canceled after it was created), and
// the watch holds the place until it ends (Release).

// Reservation is a place among a tenant's MaxWatches.
type Reservation struct {
	b        *Backend
	released atomic.Bool
}

// ReserveWatch takes a place for a watch about to be created, or refuses
// it when the tenant already has its MaxWatches open or reserved.
func (b *Backend) ReserveWatch() (*Reservation, error) {
	n := b.watches.Add(1)
	if limit := b.limits().MaxWatches; limit > 0 && n > limit {
		b.watches.Add(-1)
		if b.OnWatchRefused != nil {
			b.OnWatchRefused()
		}
		return nil, fmt.Errorf("kplex: tenant %s has %d watches open, its limit (maxWatches); close some and watch again", b.space.Tenant(), limit)
	}
	return &Reservation{b: b}, nil
}

// Release gives the place back, once.
func (r *Reservation) Release() {
	if r.released.CompareAndSwap(false, true) {
		r.b.watches.Add(-1)
	}
}
