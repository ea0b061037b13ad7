package backend

import (
	"context"

	"github.com/k3s-io/kine/pkg/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/tenantbackend"
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
// It costs one read of the key before each update (its key alone; none
// when the tenant layer has just read it, for a byte limit or a put) and
// each delete (its value too: the delete answers with what it removed, so
// the tenant layer no longer reads it afterwards). A write that kine did
// not make though the key was at its revision is an error (errRefused).

// Update writes key if it holds a value at revision. The key as its
// caller has just read it at that revision (tenantbackend.Read) stands in
// for the read.
func (b *sqlBackend) Update(ctx context.Context, key string, value []byte, revision, lease int64) (int64, *server.KeyValue, bool, error) {
	var rev int64
	var err error
	cur, read := tenantbackend.Read(ctx, key)
	if !read || cur.ModRevision != revision {
		rev, cur, err = b.Backend.Get(ctx, key, 0, true)
	}
	switch {
	case err != nil:
		return 0, nil, false, err
	case cur == nil:
		return rev, nil, false, nil
	case cur.ModRevision != revision:
		rev, cur, err := b.Backend.Get(ctx, key, 0, false) // with its value
		return rev, cur, false, err
	}
	rev, cur, ok, err := b.Backend.Update(ctx, key, value, revision, lease)
	if err == nil && !ok && cur != nil && cur.ModRevision == revision {
		return 0, nil, false, errRefused("update", key, revision)
	}
	return rev, cur, ok, err
}

// Delete deletes key if it holds a value at revision (any value when
// revision is 0), and returns what it held. An unconditional delete of a
// key that holds nothing succeeds and deletes nothing, as etcd's.
func (b *sqlBackend) Delete(ctx context.Context, key string, revision int64) (int64, *server.KeyValue, bool, error) {
	rev, cur, err := b.Backend.Get(ctx, key, 0, false)
	for {
		switch {
		case err != nil:
			return 0, nil, false, err
		case cur == nil:
			return rev, nil, revision == 0, nil
		case revision != 0 && cur.ModRevision != revision:
			return rev, cur, false, nil
		}
		tried := cur.ModRevision
		var ok bool
		if rev, _, ok, err = b.Backend.Delete(ctx, key, tried); err != nil {
			return 0, nil, false, err
		} else if ok {
			return rev, cur, true, nil
		}
		// Changed since it was read: a delete at a revision has failed
		// (above); an unconditional one deletes what the key holds now.
		rev, cur, err = b.Backend.Get(ctx, key, 0, false)
		if err == nil && cur != nil && cur.ModRevision == tried {
			return 0, nil, false, errRefused("delete", key, tried)
		}
	}
}

// errRefused is a write kine did not make though the key was at its
// revision: kine answers a write the database refused (read-only after a
// fail-over, a full disk) as a compare that failed, which its caller
// would try again for ever.
func errRefused(op, key string, revision int64) error {
	return status.Errorf(codes.Unavailable, "kplex: the database did not take the %s of %q at revision %d, which the key is at", op, key, revision)
}
