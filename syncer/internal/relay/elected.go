package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"kplex.dev/syncer/internal/natsbus"
	"kplex.dev/syncer/internal/ownership"
)

// Elected runs relays as a leader and standbys: every relay joins the
// relay membership (package ownership, its own buckets); the one holding
// the relay lease watches the host and publishes, the others wait and
// take the lease when its holder is no longer live. A new leader lists the
// host afresh and compares it with the stream (Relay.loadStream), so a
// change the old leader had not published yet is published by the new
// one: nothing is lost. Every publish checks the lease first, so a paused
// old leader cannot publish after its successor starts.
type Elected struct {
	Host    kubernetes.Interface
	Bus     *natsbus.Bus
	Log     *slog.Logger
	Workers int
	Name    string
	TTL     time.Duration

	mu      sync.Mutex
	current *Relay
	leading bool
}

// Run campaigns and relays until ctx ends.
func (e *Elected) Run(ctx context.Context) error {
	coord, err := ownership.NewIn(ctx, e.Bus.JetStream(), ownership.RelaysBucket, ownership.RelayLeaderBucket, e.Name, e.TTL, e.Log)
	if err != nil {
		return err
	}
	mctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = coord.Run(mctx) }()
	defer func() { stop(); <-done }()
	tick := time.NewTicker(e.TTL / 6)
	defer tick.Stop()
	standbyLogged := false
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if !coord.Settled() {
			continue
		}
		lease, err := coord.TryAcquire(ctx, ownership.RelayLease)
		if errors.Is(err, ownership.ErrHeld) {
			if !standbyLogged {
				e.Log.Info("relay standing by: another relay leads")
				standbyLogged = true
			}
			continue
		}
		if err != nil {
			e.Log.Warn("relay election failed; retrying", "err", err)
			continue
		}
		standbyLogged = false
		e.lead(ctx, lease)
	}
	return nil
}

// lead runs a relay for as long as the lease holds.
func (e *Elected) lead(ctx context.Context, lease *ownership.Lease) {
	e.Log.Info("relay leading", "epoch", lease.Epoch())
	rctx, cancel := context.WithCancel(ctx)
	r := New(e.Host, e.Bus, e.Log, e.Workers, "")
	r.guard = lease.Valid
	e.mu.Lock()
	e.current, e.leading = r, true
	e.mu.Unlock()
	go func() {
		select {
		case <-lease.Lost():
		case <-rctx.Done():
		}
		cancel()
	}()
	if err := r.Run(rctx); err != nil && ctx.Err() == nil {
		e.Log.Error("relay stopped", "err", err)
	}
	cancel()
	e.mu.Lock()
	e.current, e.leading = nil, false
	e.mu.Unlock()
	relCtx, relCancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = lease.Release(relCtx)
	relCancel()
	e.Log.Info("relay no longer leading", "epoch", lease.Epoch())
}

// Ready: a leader once caught up with the host; a standby at once.
func (e *Elected) Ready(r *http.Request) error {
	e.mu.Lock()
	cur, leading := e.current, e.leading
	e.mu.Unlock()
	if !leading {
		if !e.Bus.Connected() {
			return fmt.Errorf("relay standby: nats disconnected")
		}
		return nil
	}
	return cur.Ready(r)
}
