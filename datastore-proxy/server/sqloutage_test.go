package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// PostgreSQL or MySQL goes away mid-run (every connection to it cut, new
// ones refused) and comes back: /readyz says not ready while it is away,
// and ready again, with the proxy serving what it stored before, once it
// is back. (/readyz asked kine for its revision, which kine keeps in
// memory: it answered ok with the database gone.)
func TestSQLBackendOutage(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, b backend.Config) {
		relay, px := throughRelay(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := create(ctx, c, "/before", "v"); err != nil {
			t.Fatal(err)
		}
		waitReady := func(want int, when string) {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for code := readyz(px.MetricsAddress); code != want; code = readyz(px.MetricsAddress) {
				if time.Now().After(deadline) {
					t.Fatalf("/readyz = %d %s; want %d", code, when, want)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		waitReady(http.StatusOK, "with the database up")

		relay.Cut()
		waitReady(http.StatusServiceUnavailable, "with the database away")

		relay.Restore(t)
		waitReady(http.StatusOK, "after the database came back")
		waitServed(t, c, "/before", "after the database came back")
		if err := create(ctx, c, "/after", "v"); err != nil {
			t.Fatalf("write after the database came back: %v", err)
		}
	})
}

// throughRelay starts a proxy on b's database server through a relay the
// test can cut, or skips the test on SQLite (embedded: no connection).
func throughRelay(t *testing.T, b backend.Config) (*proxytest.Relay, *proxytest.Proxy) {
	t.Helper()
	addr := map[string]string{"postgres": proxytest.PostgresAddr, "mysql": proxytest.MySQLAddr}[b.Kind]
	if addr == "" {
		t.Skip("SKIPPED: an embedded SQLite has no connection to cut")
	}
	relay := proxytest.NewRelay(t, addr)
	b.DSN = strings.Replace(b.DSN, addr, relay.Addr, 1)
	return relay, proxytest.Start(t, b)
}
