package tenantbackend_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/tenantbackend"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// A tenant's usage is counted a page at a time, each page paced, all at
// one revision: the keys and bytes are exactly the tenant's (another
// tenant's keys, before and after it in the shared store, count for
// nothing), and a write after the count's revision is not in it. (The
// count was one read of the tenant's whole space: as large as the tenant
// in the store's memory and the proxy's, every two minutes.)
func TestUsageIsCountedInPagesAtOneRevision(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, cfg backend.Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		inner := proxytest.OpenBackend(t, cfg)
		tenant := func(name string) *tenantbackend.Backend { return tenantOn(t, inner, name, tenantconfig.Limits{}) }
		// beta's keys sort before alpha's and gamma's after them.
		alpha, beta, gamma := tenant("alpha"), tenant("a"), tenant("b")
		const n = 2*tenantbackend.ScanPage + 17
		var wantBytes int64
		// Every other key is the one before and "!", and one key goes
		// before them all, so that the first page ends between such
		// neighbours.
		if _, err := alpha.Create(ctx, "/registry/pods/ns/a", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		wantBytes += int64(len("/registry/pods/ns/a") + 1)
		for i := range n {
			key, value := fmt.Sprintf("/registry/pods/ns/p%04d", i/2)+[]string{"", "!"}[i%2], strings.Repeat("v", i%50+1)
			if _, err := alpha.Create(ctx, key, []byte(value), 0); err != nil {
				t.Fatalf("create %s: %v", key, err)
			}
			wantBytes += int64(len(key) + len(value))
		}
		for _, other := range []*tenantbackend.Backend{beta, gamma} {
			for i := range 5 {
				if _, err := other.Create(ctx, fmt.Sprintf("/registry/x%d", i), []byte("other"), 0); err != nil {
					t.Fatal(err)
				}
			}
		}

		var paced []int
		keys, bytes, rev, err := alpha.Scan(ctx, func(ctx context.Context, _ int64, n int) error {
			paced = append(paced, n)
			if len(paced) == 1 {
				// A write after the first page: not at the count's revision.
				if _, err := alpha.Create(ctx, "/registry/pods/ns/later", []byte("late"), 0); err != nil {
					return err
				}
			}
			return ctx.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		if keys != n+1 || bytes != wantBytes {
			t.Errorf("counted %d keys, %d bytes; want %d and %d", keys, bytes, n+1, wantBytes)
		}
		// The first page, of ScanPage keys, then one for the rest: these
		// keys are small, so the second may hold far more.
		if len(paced) != 1 {
			t.Errorf("paced %d times (%v), want after the first page only", len(paced), paced)
		}
		rev2, _, err := alpha.Get(ctx, "/registry/pods/ns/later", 0, false)
		if err != nil || rev <= 0 || rev >= rev2 {
			t.Errorf("the count's revision %d, the store's after the later write %d (%v): want it before", rev, rev2, err)
		}
	})
}
