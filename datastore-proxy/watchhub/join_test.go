package watchhub

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"kplex.dev/datastore-proxy/keyspace"
	"kplex.dev/datastore-proxy/quota"
	"kplex.dev/datastore-proxy/tenantbackend"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// slowOpen is a store whose watch streams take until release to open, and
// then fail to.
type slowOpen struct {
	server.Backend
	called, release chan struct{}
}

var errAway = errors.New("etcd away")

func (b *slowOpen) WatchStream(ctx context.Context) (etcdserverpb.Watch_WatchClient, error) {
	b.called <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil, errAway
}

// ctxStream is a tenant stream with its context only.
type ctxStream struct {
	etcdserverpb.Watch_WatchServer
	ctx context.Context
}

func (s ctxStream) Context() context.Context { return s.ctx }

// The tenant's etcd stream is opened with the hub's lock let go: opening
// waits while the connection to etcd is being made, and the lock held
// would hold up the ending etcd stream's reader and the tenant's other
// streams. (It was held, for as long as the connection took.) A stream
// that joins meanwhile waits for the opening, or for its own end.
func TestTheEtcdStreamOpensWithTheLockLetGo(t *testing.T) {
	space, err := keyspace.ForTenant("alpha")
	if err != nil {
		t.Fatal(err)
	}
	store := &slowOpen{called: make(chan struct{}, 2), release: make(chan struct{})}
	h := New(Config{Tenant: tenantbackend.New(store, space, func() tenantconfig.Limits { return tenantconfig.Limits{} }, &quota.Usage{})})
	joined := func(ctx context.Context) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := h.join(&stream{ws: ctxStream{ctx: ctx}, ids: map[int64]int64{}})
			done <- err
		}()
		return done
	}
	first := joined(context.Background())
	<-store.called
	if !h.mu.TryLock() {
		t.Fatal("the hub's lock is held while the etcd stream opens")
	}
	h.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	second := joined(ctx)
	select {
	case err := <-second:
		t.Fatalf("a second stream joined while the first opened the etcd stream: %v", err)
	case <-store.called:
		t.Fatal("a second stream opened an etcd stream while the first did")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-second:
		if err == nil {
			t.Fatal("the second stream, ended while it waited, joined")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second stream, ended while it waited, still waits")
	}

	close(store.release)
	select {
	case err := <-first:
		if !errors.Is(err, errAway) {
			t.Fatalf("the first stream's join: %v; want %v", err, errAway)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first stream's join did not end when the opening failed")
	}
	if h.opening != nil || h.up != nil {
		t.Fatal("the failed opening left the hub opening or open")
	}
}
