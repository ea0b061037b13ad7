package tenantbackend

import (
	"context"

	"github.com/k3s-io/kine/pkg/server"
)

// RangeDeleter is implemented by shared backends that delete a key range in
// one step, as etcd's DeleteRange does (etcd).
type RangeDeleter interface {
	// DeleteRange deletes the stored keys in [key, end) (end "": key
	// alone) and returns the revision of the deletion and the keys it
	// deleted, as they were.
	DeleteRange(ctx context.Context, key, end string) (int64, []*server.KeyValue, error)
}

// DeleteRange deletes the tenant's keys in [key, end) (Space.Range's
// spelling) and returns the revision, how many keys it deleted and, when
// prevKV, those keys as they were (kine's bridge has no range delete).
//
// On etcd it is etcd's DeleteRange: every key at one revision. kine's SQL
// backends delete a key at a time, each at a revision of its own as kine
// records every change, so there a reader can see the range half deleted,
// a failure midway leaves the keys not reached yet, and the revision
// returned is the last deletion's. The keys deleted are those the range
// held at the revision the delete began at, read a page at a time (as a
// usage scan reads them), so that a large range is not held in the
// proxy's memory at once unless its previous values were asked for. Each
// is deleted as it is when its turn comes (one deleted and created again
// meanwhile too); a key first created after that revision is left. A
// failure midway, a page's read as much as a key's delete, leaves the
// keys not reached yet and returns the error.
func (b *Backend) DeleteRange(ctx context.Context, key, end string, prevKV bool) (int64, int64, []*server.KeyValue, error) {
	k, e := b.space.Range(key, end)
	if d, ok := b.inner.(RangeDeleter); ok {
		rev, prev, err := d.DeleteRange(ctx, k, e)
		if err != nil {
			b.deleteFailed(err)
			return 0, 0, nil, err
		}
		prev = b.ownAll(prev)
		for _, kv := range prev {
			b.countDeleted(kv, rev)
		}
		n := int64(len(prev))
		if !prevKV {
			prev = nil
		}
		return rev, n, prev, nil
	}
	var rev, n int64
	var deleted []*server.KeyValue
	deleteAll := func(kvs []*server.KeyValue) error {
		for _, kv := range kvs {
			if !b.space.Contains(kv.Key) {
				// Not the tenant's, from a backend whose range order is
				// not the keys' bytes' (keyspace): never deleted.
				continue
			}
			r, gone, err := b.deleteAsIs(ctx, kv)
			if err != nil {
				return err
			}
			if gone != nil {
				rev = max(rev, r)
				n++
				if prevKV {
					deleted = append(deleted, gone)
				}
			}
		}
		return nil
	}
	if e == "" {
		r, kv, err := b.inner.Get(ctx, k, 0, false)
		if err != nil {
			return 0, 0, nil, err
		}
		rev = r
		if kv != nil {
			if err := deleteAll([]*server.KeyValue{kv}); err != nil {
				return 0, 0, nil, err
			}
		}
		return rev, n, deleted, nil
	}
	err := b.pages(ctx, k, e, func(r int64, kvs []*server.KeyValue, _ int, _ bool) error {
		rev = max(rev, r)
		return deleteAll(kvs)
	})
	if err != nil {
		return 0, 0, nil, err
	}
	return rev, n, deleted, nil
}

// deleteAsIs deletes the stored kv at its mod revision, and again at the
// next one while other writes change it first. It returns the revision of
// the deletion and the tenant's key as it was, or nil when someone else
// deleted it first.
func (b *Backend) deleteAsIs(ctx context.Context, kv *server.KeyValue) (int64, *server.KeyValue, error) {
	for {
		rev, cur, ok, err := b.inner.Delete(ctx, kv.Key, kv.ModRevision)
		switch {
		case err != nil:
			b.deleteFailed(err)
			return 0, nil, err
		case ok:
			own := b.own(kv)
			if own != nil {
				b.countDeleted(own, rev)
			}
			return rev, own, nil
		case cur == nil:
			return rev, nil, nil
		}
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		kv = cur
	}
}
