package natsbus

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"kplex.dev/api/bus"
)

// testBus is a Bus on an in-process server, closed once at the end of the
// test (or earlier with close).
type testBus struct {
	*Bus
	once sync.Once
}

func (b *testBus) close() { b.once.Do(b.Bus.Close) }

func openBus(t *testing.T, dir string) *testBus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, Config{StoreDir: dir, Name: "natsbus-test"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	tb := &testBus{Bus: b}
	t.Cleanup(tb.close)
	if !b.Connected() {
		t.Fatal("not connected after Open")
	}
	return tb
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type pub struct {
	key bus.Key
	typ bus.EventType
	rv  string
}

func (p pub) message() bus.Message {
	return bus.Message{Type: p.typ, ResourceVersion: p.rv, Object: json.RawMessage(fmt.Sprintf(`{"metadata":{"name":%q,"resourceVersion":%q}}`, p.key.Name, p.rv))}
}

func publish(t *testing.T, ctx context.Context, b *testBus, ps ...pub) {
	t.Helper()
	for _, p := range ps {
		hdr := nats.Header{}
		hdr.Set(bus.HeaderTraceParent, "00-trace-"+p.rv+"-01")
		if err := b.Publish(ctx, p.key, p.message(), hdr); err != nil {
			t.Fatalf("Publish %s: %v", p.key.Subject(), err)
		}
	}
}

var (
	acmeWeb    = bus.Key{Tenant: "acme", Resource: "pods", Namespace: "shop", Name: "web-0"}
	acmeDot    = bus.Key{Tenant: "acme", Resource: "pods", Namespace: "shop", Name: "web.1"}
	acmeDB     = bus.Key{Tenant: "acme", Resource: "services", Namespace: "shop", Name: "db"}
	acmeGone   = bus.Key{Tenant: "acme", Resource: "pods", Namespace: "shop", Name: "gone"}
	otherWeb   = bus.Key{Tenant: "other", Resource: "pods", Namespace: "shop", Name: "web-0"}
	sharedNode = bus.Key{Tenant: bus.SharedTenant, Resource: "nodes", Name: "node-1"}
)

// history publishes two tenants' changes: upserts, an update of the same
// key and a deletion.
var history = []pub{
	{acmeWeb, bus.Upserted, "1"},
	{acmeDB, bus.Upserted, "2"},
	{otherWeb, bus.Upserted, "3"},
	{acmeWeb, bus.Upserted, "4"},
	{acmeGone, bus.Upserted, "5"},
	{sharedNode, bus.Upserted, "6"},
	{acmeGone, bus.Deleted, "7"},
	{acmeDot, bus.Upserted, "8"},
	{otherWeb, bus.Upserted, "9"},
}

// acmeLast is the last value per acme subject after history.
var acmeLast = map[bus.Key]pub{
	acmeWeb:  {acmeWeb, bus.Upserted, "4"},
	acmeDB:   {acmeDB, bus.Upserted, "2"},
	acmeGone: {acmeGone, bus.Deleted, "7"},
	acmeDot:  {acmeDot, bus.Upserted, "8"},
}

// describe lists deliveries as "subject type@rv".
func describe(ds []Delivery) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "[%s %s@%s] ", d.Key.Subject(), d.Message.Type, d.Message.ResourceVersion)
	}
	return b.String()
}

func checkDeliveries(t *testing.T, got []Delivery, want map[bus.Key]pub) {
	t.Helper()
	seen := map[bus.Key]bool{}
	for _, d := range got {
		w, ok := want[d.Key]
		if !ok {
			t.Errorf("unexpected delivery %+v (%s)", d.Key, d.Message.ResourceVersion)
			continue
		}
		if seen[d.Key] {
			t.Errorf("%+v delivered twice", d.Key)
		}
		seen[d.Key] = true
		if !reflect.DeepEqual(d.Message, w.message()) {
			t.Errorf("%+v: message %s@%s %s, want %s@%s %s", d.Key, d.Message.Type, d.Message.ResourceVersion, d.Message.Object, w.typ, w.rv, w.message().Object)
		}
		if got := d.Header.Get(bus.HeaderTraceParent); got != "00-trace-"+w.rv+"-01" {
			t.Errorf("%+v: traceparent %q", d.Key, got)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("got %d subjects, want %d: %s", len(seen), len(want), describe(got))
	}
}

func TestLastValues(t *testing.T) {
	ctx := testCtx(t)
	b := openBus(t, t.TempDir())
	publish(t, ctx, b, history...)

	got, err := b.LastValues(ctx, bus.TenantFilter("acme"))
	if err != nil {
		t.Fatal(err)
	}
	checkDeliveries(t, got, acmeLast)

	shared, err := b.LastValues(ctx, bus.TenantFilter(bus.SharedTenant))
	if err != nil {
		t.Fatal(err)
	}
	checkDeliveries(t, shared, map[bus.Key]pub{sharedNode: {sharedNode, bus.Upserted, "6"}})

	none, err := b.LastValues(ctx, bus.TenantFilter("nobody"))
	if err != nil || len(none) != 0 {
		t.Errorf("LastValues(nobody) = %s, %v; want none", describe(none), err)
	}
}

// follower runs Follow in the background and records what it sees.
type follower struct {
	mu        sync.Mutex
	got       []Delivery
	atReplay  int // deliveries seen when replayed was called
	replays   int
	replayed  chan struct{}
	delivered chan struct{}
	cancel    context.CancelFunc
	done      chan error
	stopped   sync.Once
}

func follow(t *testing.T, b *testBus, filter string) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	f := &follower{replayed: make(chan struct{}), delivered: make(chan struct{}, 100), cancel: cancel, done: make(chan error, 1)}
	go func() {
		f.done <- b.Follow(ctx, filter, func(d Delivery) {
			f.mu.Lock()
			f.got = append(f.got, d)
			f.mu.Unlock()
			f.delivered <- struct{}{}
		}, func() {
			f.mu.Lock()
			f.replays++
			f.atReplay = len(f.got)
			if f.replays == 1 {
				close(f.replayed)
			}
			f.mu.Unlock()
		})
	}()
	t.Cleanup(func() { f.stop(t) })
	return f
}

// stop ends Follow (once) and checks it returned nil.
func (f *follower) stop(t *testing.T) {
	f.stopped.Do(func() {
		f.cancel()
		select {
		case err := <-f.done:
			if err != nil {
				t.Errorf("Follow: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Follow did not return after its context ended")
		}
	})
}

func (f *follower) snapshot() (got []Delivery, atReplay, replays int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Delivery(nil), f.got...), f.atReplay, f.replays
}

func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// waitDeliveries waits until f has seen n deliveries.
func (f *follower) waitDeliveries(t *testing.T, n int) []Delivery {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if got, _, _ := f.snapshot(); len(got) >= n {
			return got
		}
		select {
		case <-f.delivered:
		case <-deadline:
			got, _, _ := f.snapshot()
			t.Fatalf("timed out waiting for %d deliveries, got %d: %s", n, len(got), describe(got))
		}
	}
}

func TestFollow(t *testing.T) {
	ctx := testCtx(t)
	b := openBus(t, t.TempDir())
	publish(t, ctx, b, history...)

	f := follow(t, b, bus.TenantFilter("acme"))
	waitFor(t, "replayed", f.replayed)
	got, atReplay, replays := f.snapshot()
	if atReplay != len(acmeLast) || replays != 1 {
		t.Errorf("replayed after %d deliveries (called %d times), want after %d, once", atReplay, replays, len(acmeLast))
	}
	checkDeliveries(t, got, acmeLast)

	// Then new changes of the tenant are delivered, and only those.
	newWeb := pub{acmeWeb, bus.Upserted, "11"}
	publish(t, ctx, b, pub{otherWeb, bus.Upserted, "10"}, newWeb)
	got = f.waitDeliveries(t, len(acmeLast)+1)
	last := got[len(got)-1]
	if last.Key != acmeWeb || !reflect.DeepEqual(last.Message, newWeb.message()) {
		t.Errorf("new delivery = %s, want %s@%s", describe(got[len(got)-1:]), newWeb.key.Subject(), newWeb.rv)
	}
	// Give a stray delivery (another tenant's) a moment to show up.
	publish(t, ctx, b, pub{sharedNode, bus.Upserted, "12"})
	time.Sleep(200 * time.Millisecond)
	got, _, replays = f.snapshot()
	if len(got) != len(acmeLast)+1 || replays != 1 {
		t.Errorf("after the replay: %d deliveries (want %d), replayed %d times (want 1): %s", len(got), len(acmeLast)+1, replays, describe(got))
	}
	for _, d := range got {
		if d.Key.Tenant != "acme" {
			t.Errorf("delivery of tenant %q", d.Key.Tenant)
		}
	}
	f.stop(t)
}

func TestFollowEmpty(t *testing.T) {
	ctx := testCtx(t)
	b := openBus(t, t.TempDir())
	publish(t, ctx, b, history...)

	f := follow(t, b, bus.TenantFilter("nobody"))
	waitFor(t, "replayed", f.replayed)
	if got, atReplay, replays := f.snapshot(); len(got) != 0 || atReplay != 0 || replays != 1 {
		t.Errorf("empty replay: %d deliveries, replayed after %d (%d times)", len(got), atReplay, replays)
	}

	k := bus.Key{Tenant: "nobody", Resource: "pods", Namespace: "ns", Name: "p"}
	publish(t, ctx, b, pub{k, bus.Upserted, "20"})
	got := f.waitDeliveries(t, 1)
	if got[0].Key != k || got[0].Message.ResourceVersion != "20" {
		t.Errorf("delivery = %s", describe(got[:1]))
	}
	if _, _, replays := f.snapshot(); replays != 1 {
		t.Errorf("replayed %d times, want 1", replays)
	}
}

func TestReopenKeepsStream(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	b := openBus(t, dir)
	publish(t, ctx, b, history...)
	b.close()
	if b.Connected() {
		t.Error("Connected after Close")
	}

	b = openBus(t, dir)
	got, err := b.LastValues(ctx, bus.TenantFilter("acme"))
	if err != nil {
		t.Fatal(err)
	}
	checkDeliveries(t, got, acmeLast)

	// The reopened bus takes new changes on top of the old state.
	publish(t, ctx, b, pub{acmeDB, bus.Upserted, "30"})
	got, err = b.LastValues(ctx, bus.TenantFilter("acme"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[bus.Key]pub{}
	for k, v := range acmeLast {
		want[k] = v
	}
	want[acmeDB] = pub{acmeDB, bus.Upserted, "30"}
	checkDeliveries(t, got, want)
}

func TestRunServerBadListen(t *testing.T) {
	for _, listen := range []string{"nohost", "127.0.0.1:http", "127.0.0.1:"} {
		s, err := RunServer(ServerConfig{Listen: listen, StoreDir: t.TempDir()})
		if err == nil {
			s.Shutdown()
			t.Errorf("RunServer(%q): no error", listen)
		} else if !strings.Contains(err.Error(), listen) {
			t.Errorf("RunServer(%q) error %q does not name the address", listen, err)
		}
	}
}

// TestFollowSurvivesARestart restarts a real NATS server (same port, same
// store) under a follower: what was published while it was away arrives.
func TestFollowSurvivesARestart(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	store := t.TempDir()
	srv, err := RunServer(ServerConfig{Listen: addr, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, Config{URL: "nats://" + addr, Name: "follower"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pub := func(name string) {
		t.Helper()
		for {
			err := b.Publish(ctx, bus.Key{Tenant: "t", Resource: "pods", Namespace: "ns", Name: name}, bus.Message{Type: bus.Upserted, ResourceVersion: "1", Object: []byte(`{}`)}, nil)
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish %s: %v", name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	pub("before")
	var mu sync.Mutex
	seen := map[string]bool{}
	go func() {
		_ = b.Follow(ctx, bus.TenantFilter("t"), func(d Delivery) {
			mu.Lock()
			seen[d.Key.Name] = true
			mu.Unlock()
		}, func() {})
	}()
	has := func(name string) bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[name]
	}
	for !has("before") {
		if ctx.Err() != nil {
			t.Fatal("the first message never arrived")
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	if srv, err = RunServer(ServerConfig{Listen: addr, StoreDir: store}); err != nil {
		t.Fatal(err)
	}
	pub("after")
	for !has("after") {
		if ctx.Err() != nil {
			t.Fatal("a message published after the restart never arrived")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
