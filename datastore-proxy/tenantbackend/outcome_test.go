package tenantbackend_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/keyspace"
	"kplex.dev/datastore-proxy/quota"
	"kplex.dev/datastore-proxy/tenantbackend"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// lostAcks is a shared backend whose creates are applied and then
// reported as the caller's deadline passing: what a client with a short
// deadline gets when etcd applies its write just after (an etcd batch goes
// on without a caller that gave up).
type lostAcks struct{ server.Backend }

func (b lostAcks) Create(ctx context.Context, key string, value []byte, lease int64) (int64, error) {
	if _, err := b.Backend.Create(ctx, key, value, lease); err != nil {
		return 0, err
	}
	return 0, context.DeadlineExceeded
}

func tenantOn(t *testing.T, inner server.Backend, name string, l tenantconfig.Limits) *tenantbackend.Backend {
	t.Helper()
	space, err := keyspace.ForTenant(name)
	if err != nil {
		t.Fatal(err)
	}
	return tenantbackend.New(inner, space, func() tenantconfig.Limits { return l }, &quota.Usage{})
}

// Creates applied after their callers gave up count against the key limit:
// a tenant that sends creates with deadlines too short for them cannot
// store more than its limit. (Only a create that succeeded was counted, so
// every one of these was admitted, until the next rescan, two minutes or
// more away: 8 keys stored against a limit of 3 here.)
func TestCreatesWhoseAnswersWereLostCountAgainstTheLimit(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, cfg backend.Config) {
		inner := proxytest.OpenBackend(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		alpha := tenantOn(t, lostAcks{inner}, "alpha", tenantconfig.Limits{MaxKeys: 3})
		var refused int
		for i := range 8 {
			_, err := alpha.Create(ctx, fmt.Sprintf("/registry/configmaps/ns/c%d", i), []byte("v"), 0)
			switch {
			case errors.Is(err, quota.ErrNoSpace):
				refused++
			case !errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("create %d: %v", i, err)
			}
		}
		_, n, err := tenantOn(t, inner, "alpha", tenantconfig.Limits{}).Count(ctx, "/", "0", 0)
		if err != nil {
			t.Fatal(err)
		}
		if n > 3 || refused != 8-int(n) {
			t.Errorf("%d keys stored against a limit of 3, %d creates refused", n, refused)
		}
	})
}

// A create of a key that exists fails as the create's compare does, even at
// the tenant's key limit, where it got "database space exceeded"; a put
// that overwrites a key with less is taken at the byte limit, where on the
// SQL backends it was checked as a new key and refused.
func TestAtTheLimitsAnExistingKeyIsNotANewOne(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, cfg backend.Config) {
		inner := proxytest.OpenBackend(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const key = "/registry/configmaps/ns/big"
		big := strings.Repeat("v", 100)
		keys := tenantOn(t, inner, "alpha", tenantconfig.Limits{MaxKeys: 1})
		if _, err := keys.Create(ctx, key, []byte(big), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Create(ctx, key, []byte("again"), 0); !errors.Is(err, server.ErrKeyExists) {
			t.Errorf("a create of an existing key at the key limit: err = %v, want %v", err, server.ErrKeyExists)
		}
		limit := int64(len(key) + len(big))
		bytes := tenantOn(t, inner, "beta", tenantconfig.Limits{MaxBytes: limit})
		if _, err := bytes.Create(ctx, key, []byte(big), 0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := bytes.Put(ctx, key, []byte("small"), 0); err != nil {
			t.Errorf("a put that shrinks a key at the byte limit: %v", err)
		}
		if _, _, err := bytes.Put(ctx, "/registry/configmaps/ns/new", []byte(big), 0); !errors.Is(err, quota.ErrNoSpace) {
			t.Errorf("a new key past the byte limit: err = %v, want %v", err, quota.ErrNoSpace)
		}
	})
}

// lostDeletes is a shared backend whose deletes are applied and then
// reported as the caller's deadline passing.
type lostDeletes struct{ server.Backend }

func (b lostDeletes) Delete(ctx context.Context, key string, revision int64) (int64, *server.KeyValue, bool, error) {
	if _, _, _, err := b.Backend.Delete(ctx, key, revision); err != nil {
		return 0, nil, false, err
	}
	return 0, nil, false, context.DeadlineExceeded
}

// A delete whose answer was lost may have freed its key: a tenant at its
// key limit that deleted so gets its next create within a recount, not
// after the periodic one two minutes away (the delete left no doubt, so
// nothing started a recount early). Both a delete and a range delete.
func TestDeletesWhoseAnswersWereLostStartARecount(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, cfg backend.Config) {
		inner := proxytest.OpenBackend(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, how := range []string{"delete", "range delete"} {
			name := strings.ReplaceAll("t-"+how, " ", "-")
			alpha := tenantOn(t, lostDeletes{inner}, name, tenantconfig.Limits{MaxKeys: 2})
			for i := range 2 {
				if _, err := alpha.Create(ctx, fmt.Sprintf("/registry/k%d", i), []byte("v"), 0); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			if how == "delete" {
				_, _, _, err = alpha.Delete(ctx, "/registry/k0", 0)
			} else {
				_, _, _, err = alpha.DeleteRange(ctx, "/registry/k0", "", false)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: %v, want the lost answer", how, err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, err := alpha.Create(ctx, "/registry/k2", []byte("v"), 0)
				if err == nil {
					break
				}
				if !errors.Is(err, quota.ErrNoSpace) || time.Now().After(deadline) {
					t.Fatalf("%s: a create after the lost delete: %v (10 s on)", how, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	})
}
