package ownership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lease is a shard's hold on one tenant at one epoch.
type Lease struct {
	c      *Coordinator
	tenant string
	epoch  uint64

	mu         sync.Mutex
	validUntil time.Time
	lost       chan struct{}
	lostOnce   sync.Once
	stop       context.CancelFunc
}

func (c *Coordinator) newLease(ctx context.Context, tenant string, epoch uint64, wait time.Duration) (*Lease, error) {
	if wait > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	kctx, cancel := context.WithCancel(context.Background())
	l := &Lease{c: c, tenant: tenant, epoch: epoch, lost: make(chan struct{}), stop: cancel, validUntil: time.Now().Add(c.ttl / 2)}
	if err := l.confirm(ctx); err != nil {
		cancel()
		return nil, err
	}
	go l.keep(kctx)
	return l, nil
}

// Epoch is the lease's fencing epoch (the owners record's revision).
func (l *Lease) Epoch() uint64 { return l.epoch }

// Valid reports whether this shard may write for the tenant now.
func (l *Lease) Valid() bool {
	select {
	case <-l.lost:
		return false
	default:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Before(l.validUntil)
}

// Lost is closed once the lease is gone for good.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

func (l *Lease) lose(why string) {
	l.lostOnce.Do(func() {
		l.c.log.Warn("lost tenant lease", "tenant", l.tenant, "epoch", l.epoch, "why", why)
		close(l.lost)
	})
}

// confirm re-reads the record; unchanged, it extends validity by ttl/2
// from when the read started.
func (l *Lease) confirm(ctx context.Context) error {
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, l.c.ttl/3)
	defer cancel()
	e, err := l.c.owners.Get(rctx, l.tenant)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		l.lose("its record is gone")
		return fmt.Errorf("tenant %s: lease record gone", l.tenant)
	}
	if err != nil {
		return err // validity runs out on its own
	}
	var cur record
	_ = json.Unmarshal(e.Value(), &cur)
	if e.Revision() != l.epoch || cur.Shard != l.c.shard {
		l.lose(fmt.Sprintf("now held by %s at epoch %d", cur.Shard, e.Revision()))
		return fmt.Errorf("tenant %s: lease taken by %s", l.tenant, cur.Shard)
	}
	l.mu.Lock()
	l.validUntil = start.Add(l.c.ttl / 2)
	l.mu.Unlock()
	return nil
}

func (l *Lease) keep(ctx context.Context) {
	tick := time.NewTicker(l.c.ttl / 6)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.lost:
			return
		case <-tick.C:
			_ = l.confirm(ctx)
		}
	}
}

// Release gives the tenant up (after its syncer stopped writing), so the
// next owner may take it at once.
func (l *Lease) Release(ctx context.Context) error {
	l.stop()
	l.lose("released")
	err := l.c.owners.Delete(ctx, l.tenant, jetstream.LastRevision(l.epoch))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("release %s: %w", l.tenant, err)
	}
	return nil
}

// ErrFenced is returned for a write attempted without a valid lease.
var ErrFenced = errors.New("fenced: this shard no longer holds the tenant's lease")

// Fence wraps a transport so mutating requests are refused, without being
// sent, while the lease is not valid. onFenced is called for each refusal.
func (l *Lease) Fence(rt http.RoundTripper, onFenced func()) http.RoundTripper {
	return fenced{next: rt, l: l, onFenced: onFenced}
}

type fenced struct {
	next     http.RoundTripper
	l        *Lease
	onFenced func()
}

func (f fenced) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !f.l.Valid() {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		if f.onFenced != nil {
			f.onFenced()
		}
		return nil, fmt.Errorf("%s %s: tenant %s epoch %d: %w", r.Method, r.URL.Path, f.l.tenant, f.l.epoch, ErrFenced)
	}
	return f.next.RoundTrip(r)
}
