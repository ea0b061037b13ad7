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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + o.MetricsAddress + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("/readyz = %d while the database is not there; want 503", resp.StatusCode)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the proxy exited before it served /readyz: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /readyz within 10 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stopped while waiting for its database: %v; want no error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after it was stopped while waiting for its database")
	}
}

// Stopped while a profile is being taken (30 s) on its metrics address,
// the proxy exits without an error once it has drained: the request still
// under way is closed, not the stop failed.
func TestStoppedDuringAProfileIsNoFailure(t *testing.T) {
	o, _ := runOptions(t, 0)
	o.Profiling = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + o.MetricsAddress + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz within 10 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stopped during a profile: %v; want no error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after it was stopped during a profile")
	}
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
