package backend

import (
	"context"

	"github.com/k3s-io/kine/pkg/server"
)

// Why Update and Delete read the key first: kine's SQL log writes a change
// to a key when the key's newest row is at the revision compared (its
// insert's guard is `MAX(id) of the key = revision`), whether that row is a
// value or a deletion, and a key with no row compares as 0. etcd compares a
// key that is absent or deleted as mod revision 0. So on kine:
//   - an update at the revision of a key's deletion brought the key back,
//     where etcd's compare fails;
//   - a delete of a key that never existed (revision 0) wrote a deletion,
//     a new revision and a DELETE event for it, where etcd deletes nothing;
//   - a delete at the revision of a deletion wrote a second one;
//   - and an unconditional delete (revision 0, the Txn kine reads as a
//     plain delete) of a key that exists failed.
//
// The tenant layer counts a tenant's keys and bytes on etcd's meaning (an
// update changes a live key, a delete removes one), so the first two also
// let a tenant write past its quota: delete a key that never was, then
// "update" it at the deletion's revision, counted as no key and no bytes.
//
// Here a change is written only when the key is live at the revision
// compared (any live revision for an unconditional delete), as etcd's
// compare on the key's mod revision decides; kine's guard still holds the
// write to that revision, so a change in between makes it fail as before.
// It costs one read of the key before each update (its key alone) and
// each delete (its value too: the delete answers with what it removed, so
// the tenant layer no longer reads it afterwards).

// Update writes key if it holds a value at revision.
func (b *sqlBackend) Update(ctx context.Context, key string, value []byte, revision, lease int64) (int64, *server.KeyValue, bool, error) {
	rev, cur, err := b.Backend.Get(ctx, key, 0, true)
	if err != nil {
		return 0, nil, false, err
	}
	switch {
	case cur == nil:
		return rev, nil, false, nil
	case cur.ModRevision != revision:
		return b.failed(ctx, key)
	}
	return b.Backend.Update(ctx, key, value, revision, lease)
}

// failed answers a compare that failed with the key as it is now, value
// and all (nil: absent), as kine's own failed update does.
func (b *sqlBackend) failed(ctx context.Context, key string) (int64, *server.KeyValue, bool, error) {
	rev, cur, err := b.Backend.Get(ctx, key, 0, false)
	return rev, cur, false, err
}

// Delete deletes key if it holds a value at revision (any value when
// revision is 0), and returns what it held. An unconditional delete of a
// key that holds nothing succeeds and deletes nothing, as etcd's.
func (b *sqlBackend) Delete(ctx context.Context, key string, revision int64) (int64, *server.KeyValue, bool, error) {
	for {
		rev, cur, err := b.Backend.Get(ctx, key, 0, false)
		switch {
		case err != nil:
			return 0, nil, false, err
		case cur == nil:
			return rev, nil, revision == 0, nil
		case revision != 0 && cur.ModRevision != revision:
			return rev, cur, false, nil
		}
		rev, _, ok, err := b.Backend.Delete(ctx, key, cur.ModRevision)
		switch {
		case err != nil:
			return 0, nil, false, err
		case ok:
			return rev, cur, true, nil
		}
		// Changed since it was read. A delete at a revision has failed;
		// an unconditional one deletes what the key holds now.
		if revision != 0 {
			return b.failed(ctx, key)
		}
		if err := ctx.Err(); err != nil {
			return 0, nil, false, err
		}
	}
}
