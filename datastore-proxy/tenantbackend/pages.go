package tenantbackend

import (
	"context"

	"github.com/k3s-io/kine/pkg/server"
)

// A usage scan and a range delete on SQL read a range of the tenant's
// space a page at a time: the whole range in one answer would be as large
// as the tenant, in the store's memory and the proxy's. The first page is
// scanPage keys; the next ones hold about scanPageBytes at the last page's
// size a key, between scanPage and maxScanPage keys: on etcd each page
// also counts the keys left in the range, so few large pages cost it less
// than many small ones.
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

// pages reads the stored keys in [from, end) a page at a time, every page
// at the revision of the first, and hands each page's keys to f with that
// revision, the bytes of keys and values the page read, and whether
// another page follows; an error of f's ends the read with it. A page
// starts at the last key of the one before, read again and skipped. (It
// was written when kine's MySQL and PostgreSQL drivers read a start key's
// trailing "\x00" as "#"; the proxy now turns that rewrite off,
// backend/keys.go, so the key just after it, key+"\x00", would do too.)
func (b *Backend) pages(ctx context.Context, from, end string, f func(rev int64, kvs []*server.KeyValue, read int, more bool) error) error {
	var rev int64
	last := ""
	page := int64(scanPage)
	for {
		r, kvs, err := b.inner.List(ctx, from, end, page, rev, false)
		if err != nil {
			return err
		}
		if rev == 0 {
			rev = r
		}
		n := len(kvs)
		full := int64(n) == page
		if last != "" && n > 0 && kvs[0].Key == last {
			kvs = kvs[1:]
		}
		var read int
		for _, kv := range kvs {
			read += len(kv.Key) + len(kv.Value)
		}
		more := full && len(kvs) > 0
		if err := f(rev, kvs, read, more); err != nil {
			return err
		}
		if !more {
			return nil
		}
		last = kvs[len(kvs)-1].Key
		from = last
		page = nextScanPage(n, read)
	}
}
