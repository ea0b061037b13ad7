package backend

import (
	"cmp"
	"context"
	"errors"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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
// not make though the key was at its revision is an error (errRefused),
// and so is a create the database refused (Create).

// Update writes key if it holds a value at revision. The key as its
// caller has just read it at that revision (tenantbackend.Read) stands in
// for the read.
func (b *sqlBackend) Update(ctx context.Context, key string, value []byte, revision, lease int64) (int64, *server.KeyValue, bool, error) {
	if err := b.checkLease(lease); err != nil {
		return 0, nil, false, err
	}
	var rev int64
	var err error
	cur, read := tenantbackend.Read(ctx, key)
	if !read {
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

// Create creates key if it holds nothing, as kine's Create does, in one
// write for a key that never existed and after a read over a deletion.
// kine's own dropped the error of a write the database refused: read back
// absent, the key answered as created, a put acknowledged and never
// applied; over a deletion, as existing, which a put then tried again for
// ever. Here that error is returned.
func (b *sqlBackend) Create(ctx context.Context, key string, value []byte, lease int64) (int64, error) {
	if err := b.checkLease(lease); err != nil {
		return 0, err
	}
	ev := &server.Event{Create: true, KV: &server.KeyValue{Key: key, Value: value, Lease: lease}, PrevKV: &server.KeyValue{}}
	rev, err := b.log.Append(ctx, ev)
	switch {
	case err != nil:
		return b.createFailed(ctx, err)
	case rev != 0:
		return rev, nil
	}
	// The key has rows: its last one must be a deletion, to create over.
	last, err := b.log.List(ctx, key, "", 1, 0, true, true)
	switch {
	case err != nil:
		return 0, err
	case len(last.Events) == 0 || !last.Events[0].Delete:
		return b.createFailed(ctx, server.ErrKeyExists)
	}
	ev.PrevKV.ModRevision = last.Events[0].KV.ModRevision
	if rev, err = b.log.Append(ctx, ev); err != nil || rev == 0 {
		return b.createFailed(ctx, cmp.Or(err, server.ErrKeyExists)) // another write came first
	}
	return rev, nil
}

// createFailed answers a create that failed with err as kine does: a key
// that exists (server.ErrKeyExists, also how kine's dialects translate a
// conflicting insert) at the current revision, which kine's bridge then
// reads the key at.
func (b *sqlBackend) createFailed(ctx context.Context, err error) (int64, error) {
	if !errors.Is(err, server.ErrKeyExists) {
		return 0, err
	}
	rev, rerr := b.log.CurrentRevision(ctx)
	if rerr != nil {
		return 0, rerr
	}
	return rev, err
}

// errRefused is a write kine did not make though the key was at its
// revision: kine answers a write the database refused (read-only after a
// fail-over, a full disk) as a compare that failed, which its caller
// would try again for ever.
func errRefused(op, key string, revision int64) error {
	return status.Errorf(codes.Unavailable, "kplex: the database did not take the %s of %q at revision %d, which the key is at", op, key, revision)
}

// checkLease refuses a lease longer than the lease column holds (68 years
// on PostgreSQL and MySQL) as etcd refuses one longer than its own
// longest, rather than with the database's error.
func (b *sqlBackend) checkLease(lease int64) error {
	if b.maxLease > 0 && lease > b.maxLease {
		return rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	return nil
}
