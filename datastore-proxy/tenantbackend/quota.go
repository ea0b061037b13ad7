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

// A scan reads a tenant's space a page at a time: the whole space in one
// answer would be as large as the tenant, in the store's memory and the
// proxy's, every RescanAfter. The first page is scanPage keys; the next
// ones hold about scanPageBytes at the last page's size a key, between
// scanPage and maxScanPage keys: on etcd each page also counts the keys
// left in the range, so few large pages cost it less than many small ones.
const (
	scanPage      = 256
	maxScanPage   = 16384
	scanPageBytes = 1 << 20
)

// nextScanPage is the keys of the page after one of n keys and read bytes.
func nextScanPage(n, read int) int64 {
	if n == 0 || read == 0 {
		return scanPage
	}
	return int64(min(max(scanPageBytes/max(read/n, 1), scanPage), maxScanPage))
}

// scan counts the tenant's keys and bytes in the shared store, a page at a
// time, every page at the revision of the first (quota.Scan). A page
// starts at the last key of the one before, read again and skipped,
// rather than at the key just after it, key+"\x00": kine's MySQL driver
// reads a start key's trailing "\x00" as "#".
func (b *Backend) scan(ctx context.Context, pace quota.Pace) (keys, bytes, rev int64, err error) {
	from, end := b.space.Range("", "")
	last := ""
	page := int64(scanPage)
	for {
		r, kvs, err := b.inner.List(ctx, from, end, page, rev, false)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("count tenant %s usage: %w", b.space.Tenant(), err)
		}
		if rev == 0 {
			rev = r
		}
		n := len(kvs)
		full := int64(n) == page
		if last != "" && len(kvs) > 0 && kvs[0].Key == last {
			kvs = kvs[1:]
		}
		var read int
		for _, kv := range kvs {
			read += len(kv.Key) + len(kv.Value)
			if own := b.own(kv); own != nil {
				keys++
				bytes += keySize(own)
			}
		}
		if !full || len(kvs) == 0 {
			return keys, bytes, rev, nil
		}
		last = kvs[len(kvs)-1].Key
		from = last
		page = nextScanPage(n, read)
		if err := pace(ctx, rev, read); err != nil {
			return 0, 0, 0, fmt.Errorf("count tenant %s usage: %w", b.space.Tenant(), err)
		}
	}
}
