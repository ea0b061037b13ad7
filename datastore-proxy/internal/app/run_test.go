package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"kplex.dev/cli/ports"
	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/testpki"
)

// Stopped while it waits for its database, the proxy exits without an
// error (it was asked to stop), having shown not ready meanwhile.
func TestStoppedWhileOpeningTheBackendIsNoFailure(t *testing.T) {
	o, spare := runOptions(t, 1)
	// Nothing listens there: the proxy waits for the database.
	o.Backend = backend.Config{Kind: "postgres", DSN: "postgres://postgres@127.0.0.1:" + strconv.Itoa(spare[0]) + "/kplex?sslmode=disable"}
	r := run(t, o)
	if code := r.firstAnswer("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d while the database is not there; want 503", code)
	}
	r.stopsCleanly("while waiting for its database")
}

// Stopped while a profile is being taken (30 s) on its metrics address,
// the proxy exits without an error once it has drained: the request still
// under way is closed, not the stop failed.
func TestStoppedDuringAProfileIsNoFailure(t *testing.T) {
	o, _ := runOptions(t, 0)
	o.Profiling = true
	r := run(t, o)
	r.firstAnswer("/healthz")
	profile := make(chan error, 1) // how the profile's request ended
	go func() {
		resp, err := http.Get("http://" + o.MetricsAddress + "/debug/pprof/profile?seconds=30")
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		profile <- err
	}()
	time.Sleep(500 * time.Millisecond) // the profile under way
	r.stopsCleanly("during a profile")
	select {
	case err := <-profile:
		if err == nil {
			t.Fatal("the profile's request ended whole: it was not under way at the stop")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the profile's request still under way 5 s after the proxy stopped")
	}
}

// runOptions are a proxy's options on free ports, with certificates and an
// SQLite store in a folder of the test's, and spare more free ports.
func runOptions(t *testing.T, spare int) (Options, []int) {
	t.Helper()
	dir := t.TempDir()
	testpki.Write(t, dir, "run-test-ca")
	p, err := ports.Free(2 + spare)
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		ListenAddress:  "127.0.0.1:" + strconv.Itoa(p[0]),
		MetricsAddress: "127.0.0.1:" + strconv.Itoa(p[1]),
		TLSCertFile:    filepath.Join(dir, "serving.crt"),
		TLSKeyFile:     filepath.Join(dir, "serving.key"),
		ClientCAFile:   filepath.Join(dir, "ca.crt"),
		Backend:        backend.Config{Kind: "sqlite", DataDir: dir},
		BackendSlots:   32,
		ShutdownGrace:  time.Second,
	}, p[2:]
}

// running is a proxy's Run under way for a test.
type running struct {
	t      *testing.T
	o      Options
	cancel context.CancelFunc
	done   chan error // Run's result
}

// run starts Run with o until the test ends.
func run(t *testing.T, o Options) *running {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := &running{t: t, o: o, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, o, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	return r
}

// firstAnswer asks for path on the metrics address until it answers
// (within 10 s, and before Run ends), and returns the answer's status.
func (r *running) firstAnswer(path string) int {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + r.o.MetricsAddress + path)
		if err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
		select {
		case err := <-r.done:
			r.t.Fatalf("the proxy exited before it served %s: %v", path, err)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no %s within 10 s: %v", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopsCleanly stops Run and wants it to return no error within 10 s;
// when says in what state it was stopped.
func (r *running) stopsCleanly(when string) {
	r.t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Fatalf("stopped %s: %v; want no error", when, err)
		}
	case <-time.After(10 * time.Second):
		r.t.Fatalf("still running 10 s after it was stopped %s", when)
	}
}
