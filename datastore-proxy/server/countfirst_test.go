package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// A write of a tenant with limits waits for its first count before it
// takes a write slot, not while holding one: with SQLite's one write slot,
// the count of a large tenant after a restart held every other tenant's
// writes, and the fair share charged the tenant the wait as backend time.
// Each write's slot is taken with the tenant's count already there.
func TestAWriteTakesItsSlotAfterItsTenantsFirstCount(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	bctx, bcancel := context.WithCancel(ctx)
	t.Cleanup(func() { bcancel(); wg.Wait() })
	b, scheme, err := backend.Open(bctx, &wg, backend.Config{Kind: "sqlite", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	limits := &tenantconfig.Store{}
	limits.Set(&tenantconfig.Config{Tenants: map[string]tenantconfig.Limits{"alpha": {MaxKeys: 100}}})
	var s *Server
	var mu sync.Mutex
	var slotsTaken, uncounted int
	s = New(b, Options{Scheme: scheme, Limits: limits, WriteSlots: 1, OnSlotWait: func(tenant string, write bool, _ time.Duration) {
		if tenant != "alpha" || !write {
			return
		}
		_, counted := s.Usage()["alpha"]
		mu.Lock()
		defer mu.Unlock()
		slotsTaken++
		if !counted {
			uncounted++
		}
	}})
	alpha := context.WithValue(ctx, identityKey{}, identity{tenant: "alpha"})
	put := func(ctx context.Context, req any) (any, error) { return s.Put(ctx, req.(*etcdserverpb.PutRequest)) }
	for _, key := range []string{"/registry/a", "/registry/b"} {
		if _, err := s.Admit(alpha, &etcdserverpb.PutRequest{Key: []byte(key), Value: []byte("v")}, &grpc.UnaryServerInfo{FullMethod: "/etcdserverpb.KV/Put"}, put); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	mu.Lock()
	if slotsTaken != 2 || uncounted != 0 {
		t.Errorf("alpha's writes took %d write slots, %d of them before alpha's first count; want 2, none before", slotsTaken, uncounted)
	}
	mu.Unlock()

	// A delete needs no count: it neither waits for one nor starts one
	// (a tenant whose count kept failing could not delete).
	limits.Set(&tenantconfig.Config{Tenants: map[string]tenantconfig.Limits{"alpha": {MaxKeys: 100}, "beta": {MaxKeys: 100}}})
	beta := context.WithValue(ctx, identityKey{}, identity{tenant: "beta"})
	del := func(ctx context.Context, req any) (any, error) {
		return s.DeleteRange(ctx, req.(*etcdserverpb.DeleteRangeRequest))
	}
	if _, err := s.Admit(beta, &etcdserverpb.DeleteRangeRequest{Key: []byte("/registry/a")}, &grpc.UnaryServerInfo{FullMethod: "/etcdserverpb.KV/DeleteRange"}, del); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a count started would be done
	if _, counted := s.Usage()["beta"]; counted {
		t.Errorf("beta's delete counted beta's usage first")
	}
}

// A transaction refused for its shape is refused at once: it neither
// waits for its tenant's first count (nor starts one) nor takes a slot.
func TestARefusedTxnWaitsForNoCountAndNoSlot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	bctx, bcancel := context.WithCancel(ctx)
	t.Cleanup(func() { bcancel(); wg.Wait() })
	b, scheme, err := backend.Open(bctx, &wg, backend.Config{Kind: "sqlite", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	limits := &tenantconfig.Store{}
	limits.Set(&tenantconfig.Config{Tenants: map[string]tenantconfig.Limits{"alpha": {MaxKeys: 100}}})
	var mu sync.Mutex
	slots := 0
	s := New(b, Options{Scheme: scheme, Limits: limits, OnSlotWait: func(string, bool, time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		slots++
	}})
	alpha := context.WithValue(ctx, identityKey{}, identity{tenant: "alpha"})
	reached := false
	txn := func(ctx context.Context, req any) (any, error) {
		reached = true
		return s.Txn(ctx, req.(*etcdserverpb.TxnRequest))
	}
	put := func(key string) *etcdserverpb.RequestOp {
		return &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestPut{RequestPut: &etcdserverpb.PutRequest{Key: []byte(key), Value: []byte("v")}}}
	}
	// "if a is absent, put b": kine would write b's value to a.
	r := &etcdserverpb.TxnRequest{
		Compare: []*etcdserverpb.Compare{{Key: []byte("/registry/a"), Target: etcdserverpb.Compare_MOD, Result: etcdserverpb.Compare_EQUAL}},
		Success: []*etcdserverpb.RequestOp{put("/registry/b")},
	}
	_, err = s.Admit(alpha, r, &grpc.UnaryServerInfo{FullMethod: "/etcdserverpb.KV/Txn"}, txn)
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("a put of another key than the compared one: %v, want Unimplemented", err)
	}
	time.Sleep(100 * time.Millisecond) // a count started would be done
	mu.Lock()
	defer mu.Unlock()
	if _, counted := s.Usage()["alpha"]; counted || slots != 0 || reached {
		t.Errorf("refused txn: counted %v, slots taken %d, handler reached %v; want none", counted, slots, reached)
	}
}
