package tenantbackend

import (
	"context"
	"errors"

	"github.com/k3s-io/kine/pkg/server"
)

// Putter is implemented by shared backends that write a key whatever it
// holds in one step, as etcd's Put does (etcd).
type Putter interface {
	// Put writes key and returns the revision of the write and what the
	// key held before it (nil: nothing).
	Put(ctx context.Context, key string, value []byte, lease int64) (int64, *server.KeyValue, error)
}

// Put writes the tenant's key whatever it holds, within its quota, and
// returns the revision of the write and what the key held before it.
//
// kine's bridge answers a put with Create, then, if the key exists, Get
// and Update at the revision read, and reports success even when Update
// lost a race with another write to the key: a put acknowledged and never
// applied. Here a put is etcd's own put where the shared backend has one,
// and otherwise such steps again until one applies.
func (b *Backend) Put(ctx context.Context, key string, value []byte, lease int64) (int64, *server.KeyValue, error) {
	if err := checkLease(lease); err != nil {
		return 0, nil, err
	}
	p, ok := b.inner.(Putter)
	if !ok {
		return b.putByUpdate(ctx, key, value, lease)
	}
	keys, size := usageChange(key, value, nil)
	// Only a limit needs to know whether the key exists (one extra read).
	if l := b.limits(); l.MaxKeys > 0 || l.MaxBytes > 0 {
		_, old, err := b.Get(ctx, key, 0, false)
		if err != nil {
			return 0, nil, err
		}
		keys, size = usageChange(key, value, old)
	}
	if err := b.admit(ctx, keys, size); err != nil {
		return 0, nil, err
	}
	rev, prev, err := p.Put(ctx, b.space.Key(key), value, lease)
	if err != nil {
		if maybeApplied(err) {
			b.usage.Unsure(keys, size)
		}
		return 0, nil, err
	}
	prev = b.own(prev)
	keys, size = usageChange(key, value, prev)
	b.usage.Add(keys, size, rev)
	return rev, prev, nil
}

// putByUpdate puts with the compare-and-swap steps every kine backend has:
// create the key, or update it at the revision it was just read at, until
// one of them applies (another write in between means reading it again).
// A tenant with a limit has the key read first, so that an overwrite is
// not checked against its limits as a new key (one that frees bytes was
// refused); otherwise a new key, the common case, costs one write.
func (b *Backend) putByUpdate(ctx context.Context, key string, value []byte, lease int64) (int64, *server.KeyValue, error) {
	l := b.limits()
	create := l.MaxKeys == 0 && l.MaxBytes == 0
	for {
		if create {
			rev, err := b.Create(ctx, key, value, lease)
			if err == nil {
				return rev, nil, nil
			}
			if !errors.Is(err, server.ErrKeyExists) {
				return 0, nil, err
			}
		}
		_, stored, err := b.inner.Get(ctx, b.space.Key(key), 0, false)
		if err != nil {
			return 0, nil, err
		}
		cur := b.own(stored)
		create = cur == nil
		if cur != nil {
			rev, _, ok, err := b.update(ctx, key, value, cur.ModRevision, lease, stored)
			if err != nil {
				return 0, nil, err
			}
			if ok {
				return rev, cur, nil
			}
		}
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
	}
}
