package backend

import (
	"context"
	"strings"

	"github.com/k3s-io/kine/pkg/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/tenantbackend"
)

// Why PostgreSQL's keys are guarded: kine keeps them in a text column,
// which cannot hold "\x00", while an etcd key is any bytes. So on
// PostgreSQL a key with "\x00" never exists: a read of it finds nothing, a
// delete deletes nothing, a create is refused (errNULKey), and a range
// bound with one becomes the least key the column can hold at or after
// it (textBound). kine itself turned a start ending in "\x00" (the least
// key after another: kube-apiserver's continue) into one ending in "\x1a",
// and its single-key reads too: a list a page at a time skipped keys that
// follow the last one with a byte below 0x1a, and a get or a delete of
// "k\x00" read or deleted "k\x1a".

var errNULKey = status.Error(codes.InvalidArgument, `kplex: the postgres backend keeps keys as text, which cannot hold "\x00"`)

// textKeys is a PostgreSQL backend with the guard.
type textKeys struct {
	*sqlBackend
}

// textBound is the least key PostgreSQL can hold at or after bound: the
// part before its first "\x00" and then "\x01" (no key holds "\x00", so
// none lies between).
func textBound(bound string) string {
	if i := strings.IndexByte(bound, 0); i >= 0 {
		return bound[:i] + "\x01"
	}
	return bound
}

// absent tells whether key, alone (end ""), names a key the column cannot
// hold.
func absent(key, end string) bool { return end == "" && strings.IndexByte(key, 0) >= 0 }

func (b textKeys) Get(ctx context.Context, key string, revision int64, keysOnly bool) (int64, *server.KeyValue, error) {
	if absent(key, "") {
		rev, err := b.CurrentRevision(ctx)
		return rev, nil, err
	}
	return b.sqlBackend.Get(ctx, key, revision, keysOnly)
}

func (b textKeys) Create(ctx context.Context, key string, value []byte, lease int64) (int64, error) {
	if absent(key, "") {
		return 0, errNULKey
	}
	return b.sqlBackend.Create(ctx, key, value, lease)
}

func (b textKeys) Update(ctx context.Context, key string, value []byte, revision, lease int64) (int64, *server.KeyValue, bool, error) {
	if absent(key, "") {
		rev, err := b.CurrentRevision(ctx)
		return rev, nil, false, err
	}
	return b.sqlBackend.Update(ctx, key, value, revision, lease)
}

func (b textKeys) Delete(ctx context.Context, key string, revision int64) (int64, *server.KeyValue, bool, error) {
	if absent(key, "") { // as a key that holds nothing (compare.go)
		rev, err := b.CurrentRevision(ctx)
		return rev, nil, revision == 0, err
	}
	return b.sqlBackend.Delete(ctx, key, revision)
}

func (b textKeys) List(ctx context.Context, key, end string, limit, revision int64, keysOnly bool) (int64, []*server.KeyValue, error) {
	if absent(key, end) {
		rev, err := b.CurrentRevision(ctx)
		return rev, nil, err
	}
	return b.sqlBackend.List(ctx, textBound(key), textBound(end), limit, revision, keysOnly)
}

func (b textKeys) ListStream(ctx context.Context, key, end string, limit, revision int64, keysOnly bool) server.ListResult {
	if absent(key, end) {
		rev, err := b.CurrentRevision(ctx)
		kvc, errc := make(chan *server.KeyValue), make(chan error, 1)
		close(kvc)
		if err != nil {
			errc <- err
		}
		close(errc)
		return server.ListResult{CurrentRevision: rev, KVc: kvc, Errorc: errc}
	}
	return b.sqlBackend.ListStream(ctx, textBound(key), textBound(end), limit, revision, keysOnly)
}

func (b textKeys) Count(ctx context.Context, key, end string, revision int64) (int64, int64, error) {
	if absent(key, end) {
		rev, err := b.CurrentRevision(ctx)
		return rev, 0, err
	}
	return b.sqlBackend.Count(ctx, textBound(key), textBound(end), revision)
}

// WatchRange watches [key, end) with its bounds as the column can hold
// them; a watch of a key it cannot hold has nothing to catch up on (it
// starts at the current revision) and sees no event, as none can be
// written.
func (b textKeys) WatchRange(ctx context.Context, key, end string, revision int64, h tenantbackend.WatchHooks) server.WatchResult {
	if absent(key, end) {
		return b.sqlBackend.WatchRange(ctx, key, "", 0, h)
	}
	return b.sqlBackend.WatchRange(ctx, textBound(key), textBound(end), revision, h)
}
