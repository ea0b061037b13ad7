package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A compaction at the revision another replica answered a write with is
// accepted at once: on SQL, the revision kine keeps in memory stays
// behind other replicas' writes until its poller reads them (up to a
// second), and the compaction was refused as a future revision.
func TestACompactionAtAnotherReplicasRevisionIsAccepted(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		if b.Kind == "sqlite" {
			t.Skip("SKIPPED: SQLite is served by one replica")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		writer := proxytest.Start(t, b).Client(t, "alpha")
		compactor := proxytest.Start(t, b).Client(t, "alpha")
		for i := range 5 {
			put, err := writer.Put(ctx, fmt.Sprintf("/registry/configmaps/default/c%d", i), "v")
			if err != nil {
				t.Fatal(err)
			}
			resp, err := compactor.Compact(ctx, put.Header.Revision)
			if err != nil {
				t.Fatalf("compaction at %d, the revision of a write through the other replica: %v", put.Header.Revision, err)
			}
			if resp.Header.Revision < put.Header.Revision {
				t.Fatalf("compaction at %d answered with revision %d", put.Header.Revision, resp.Header.Revision)
			}
		}
	})
}
