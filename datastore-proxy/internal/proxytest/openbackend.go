package proxytest

import (
	"context"
	"sync"
	"testing"

	"github.com/k3s-io/kine/pkg/server"

	"kplex.dev/datastore-proxy/backend"
)

// OpenBackend opens and starts the shared backend of c for the test (on
// SQLite, in a folder of the test's own), and stops it, waiting for its
// goroutines, when the test ends.
func OpenBackend(t testing.TB, c backend.Config) server.Backend {
	t.Helper()
	b, _ := OpenBackendToStop(t, c)
	return b
}

// OpenBackendToStop is OpenBackend, also returning how to stop the backend
// before the test ends (and wait for its goroutines); a second stop, as
// the test's end makes, does nothing.
func OpenBackendToStop(t testing.TB, c backend.Config) (server.Backend, func()) {
	t.Helper()
	if c.Kind == "sqlite" && c.DSN == "" {
		c.DataDir = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b, _, err := backend.Open(ctx, &wg, c)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return b, stop
}
