package tenantbackend

import (
	"context"
	"errors"
	"fmt"

	"github.com/k3s-io/kine/pkg/server"

	"kplex.dev/datastore-proxy/quota"
)

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

// scanPage is how many keys a scan reads at a time: a tenant's whole space
// in one answer would be as large as the tenant, in the store's memory and
// the proxy's, every RescanAfter.
const scanPage = 256

// scanRestarts is how often a scan starts again at the current revision
// when the one it reads at is compacted under it (a long, paced scan).
const scanRestarts = 3

// scan counts the tenant's keys and bytes in the shared store, a page at a
// time, every page at the revision of the first (quota.Scan).
func (b *Backend) scan(ctx context.Context, pace quota.Pace) (keys, bytes, rev int64, err error) {
	for range scanRestarts {
		keys, bytes, rev, err = b.scanOnce(ctx, pace)
		if !errors.Is(err, server.ErrCompacted) {
			break
		}
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("count tenant %s usage: %w", b.space.Tenant(), err)
	}
	return keys, bytes, rev, nil
}

func (b *Backend) scanOnce(ctx context.Context, pace quota.Pace) (keys, bytes, rev int64, err error) {
	from, end := b.space.Range("", "")
	for {
		r, kvs, err := b.inner.List(ctx, from, end, scanPage, rev, false)
		if err != nil {
			return 0, 0, 0, err
		}
		if rev == 0 {
			rev = r
		}
		var read int
		for _, kv := range kvs {
			read += len(kv.Key) + len(kv.Value)
			if own := b.own(kv); own != nil {
				keys++
				bytes += keySize(own)
			}
		}
		if len(kvs) < scanPage {
			return keys, bytes, rev, nil
		}
		from = kvs[len(kvs)-1].Key + "\x00"
		if err := pace(ctx, rev, read); err != nil {
			return 0, 0, 0, err
		}
	}
}
