package tenantbackend

import (
	"context"

	"github.com/k3s-io/kine/pkg/server"
)

// Update updates the tenant's key if it is still at revision, within its
// byte quota (a growing value is checked against it).
//
// Only a byte limit needs the old size: the key is then read first, and a
// key that is not at revision fails here, as etcd's compare would, without
// a write.
func (b *Backend) Update(ctx context.Context, key string, value []byte, revision, lease int64) (int64, *server.KeyValue, bool, error) {
	if err := checkLease(lease); err != nil {
		return 0, nil, false, err
	}
	if b.limits().MaxBytes == 0 {
		return b.update(ctx, key, value, revision, lease, nil)
	}
	rev, old, err := b.inner.Get(ctx, b.space.Key(key), 0, false)
	switch {
	case err != nil:
		return 0, nil, false, err
	case old == nil || old.ModRevision != revision:
		return rev, b.own(old), false, nil
	}
	return b.update(ctx, key, value, revision, lease, old)
}

// update updates the tenant's key if it is still at revision; old, when
// not nil, is the key as it was just read, at that revision (stored, with
// its value), and is handed to the shared backend (Read).
func (b *Backend) update(ctx context.Context, key string, value []byte, revision, lease int64, old *server.KeyValue) (int64, *server.KeyValue, bool, error) {
	var grow int64
	if old != nil {
		grow = int64(len(value) - len(old.Value))
		if b.limits().MaxBytes > 0 { // a key limit alone need not wait for a count
			if err := b.admit(ctx, 0, grow); err != nil {
				return 0, nil, false, err
			}
		}
		ctx = context.WithValue(ctx, readKey{}, old)
	}
	rev, kv, ok, err := b.inner.Update(ctx, b.space.Key(key), value, revision, lease)
	switch {
	case old == nil && (ok && err == nil || maybeApplied(err)):
		b.usage.Uncounted() // its size before is not known
	case ok && err == nil:
		b.usage.Add(0, grow, rev)
	case maybeApplied(err):
		b.usage.Unsure(0, grow)
	}
	return rev, b.own(kv), ok, err
}

type readKey struct{}

// Read is the stored key that an update's caller has just read, at the
// revision the update is for, when it did (a shared backend that checks a
// key before it writes it may take it rather than read it again).
func Read(ctx context.Context, key string) (*server.KeyValue, bool) {
	kv, ok := ctx.Value(readKey{}).(*server.KeyValue)
	if !ok || kv.Key != key {
		return nil, false
	}
	return kv, true
}
