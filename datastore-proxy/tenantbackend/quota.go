package tenantbackend

import (
	"context"
	"fmt"

	"github.com/k3s-io/kine/pkg/server"

	"kplex.dev/datastore-proxy/quota"
)

// Counted waits until the tenant's counts are what its writes are checked
// against (its first count, when it has limits; quota.Usage.Admit), so
// that a caller can wait for them before taking a scarce resource.
func (b *Backend) Counted(ctx context.Context) error { return b.admit(ctx, 0, 0) }

// admit checks a write that adds keys and bytes against the tenant's
// limits. Usage is kept for every tenant (it feeds the keys and bytes
// metrics), but a tenant without limits is never refused, not even when
// its usage cannot be counted.
func (b *Backend) admit(ctx context.Context, keys, bytes int64) error {
	l := b.limits()
	err := b.usage.Admit(ctx, l, b.scan, keys, bytes)
	if l.MaxKeys == 0 && l.MaxBytes == 0 {
		return nil
	}
	return err
}

// usageChange is what writing value to the tenant's key adds to its usage
// when the key held old (nil: nothing, so a new key).
func usageChange(key string, value []byte, old *server.KeyValue) (keys, bytes int64) {
	if old == nil {
		return 1, int64(len(key) + len(value))
	}
	return 0, int64(len(value) - len(old.Value))
}

// keySize is what a tenant key holding kv counts for in its usage bytes.
func keySize(kv *server.KeyValue) int64 { return int64(len(kv.Key) + len(kv.Value)) }

// countDeleted takes kv, a tenant key deleted at rev, off the tenant's
// usage.
func (b *Backend) countDeleted(kv *server.KeyValue, rev int64) { b.usage.Add(-1, -keySize(kv), rev) }

// scan counts the tenant's keys and bytes in the shared store, a page at a
// time, every page at the revision of the first (quota.Scan), and paces
// itself between pages.
func (b *Backend) scan(ctx context.Context, pace quota.Pace) (keys, bytes, rev int64, err error) {
	from, end := b.space.Range("", "")
	err = b.pages(ctx, from, end, func(r int64, kvs []*server.KeyValue, read int, more bool) error {
		rev = r
		for _, kv := range kvs {
			if own := b.own(kv); own != nil {
				keys++
				bytes += keySize(own)
			}
		}
		if !more {
			return nil
		}
		return pace(ctx, r, read)
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("count tenant %s usage: %w", b.space.Tenant(), err)
	}
	return keys, bytes, rev, nil
}
