package tenantbackend

import (
	"context"

	"kplex.dev/datastore-proxy/rangewire"
)

// RawLister is implemented by shared backends that can answer a list with
// the store's own encoding of an etcd RangeResponse (etcd): the tenant's
// answer is then that encoding with its keys rewritten (rangewire), never
// decoded into messages and encoded again.
type RawLister interface {
	// ListRaw reads stored [key, end) at revision (0: latest) with etcd's
	// Range semantics: at most limit keys (0: all), more and count as etcd
	// sets them, keys only or the count only when asked. It returns the
	// encoded RangeResponse.
	ListRaw(ctx context.Context, key, end string, limit, revision int64, keysOnly, countOnly bool) ([]byte, error)
}

// ListRaw lists the tenant's keys in [key, end) (Space.Range's spelling) as
// an encoded etcd RangeResponse whose keys are the tenant's and whose
// header holds only the revision, as kine's list answers. ok is false when
// the shared backend is not a RawLister; then List serves.
func (b *Backend) ListRaw(ctx context.Context, key, end string, limit, revision int64, keysOnly, countOnly bool) (resp []byte, ok bool, err error) {
	rl, ok := b.inner.(RawLister)
	if !ok {
		return nil, false, nil
	}
	k, e := b.space.Range(key, end)
	raw, err := rl.ListRaw(ctx, k, e, max(limit, 0), max(revision, 0), keysOnly, countOnly)
	if err != nil {
		return nil, true, err
	}
	resp, err = rangewire.Own(raw, b.space.Prefix())
	return resp, true, err
}
