package server

import (
	kineserver "github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Watch serves a tenant's watch stream: events of its own keys only. The
// tenant's watch streams share one watch stream of the tenant's own on the
// store (watchhub says why): on etcd an etcd watch stream, on the SQL
// backends one the proxy serves itself (localwatch says why not kine's
// bridge).
func (s *Server) Watch(ws etcdserverpb.Watch_WatchServer) error {
	st, err := s.tenant(ws.Context())
	if err != nil {
		return err
	}
	ws, stop, err := s.drainable(ws)
	if err != nil {
		return err
	}
	defer stop()
	return st.hub.Serve(ws)
}

// The apiserver's compaction key, which kine stores under another name
// (kine server/compact.go).
const (
	compactRevKey = "compact_rev_key"
	compactRevAPI = "compact_rev_key_apiserver"
)

// storedKey is the key kine stores a tenant's key under: the key itself,
// but for the compaction key (toPB turns it back).
func storedKey(key string) string {
	if key == compactRevKey {
		return compactRevAPI
	}
	return key
}

// tenantRange is the range [key, end) of an etcd request as the tenant
// backend takes it (keyspace.Space.Range's spelling): "\x00" to "\x00",
// etcd's every key, is "" to "".
func tenantRange(key, end []byte) (string, string) {
	if string(key) == "\x00" && string(end) == "\x00" {
		return "", ""
	}
	return string(key), string(end)
}

// createRange is the tenant range a create request asks for, in kine's
// spelling and, for a watch of one key, with the apiserver's compaction
// key as kine stores it (watchhub.Config.Range). A range is left as it
// is, as DeleteRange leaves it: renamed, a prefix watch on
// "compact_rev_key" missed "compact_rev_key/x".
func createRange(cr *etcdserverpb.WatchCreateRequest) (string, string) {
	etcdWatchRange(cr)
	key, end := tenantRange(cr.Key, cr.RangeEnd)
	if end == "" {
		key = storedKey(key) // the apiserver's compaction key, as kine stores it
	}
	return key, end
}

// compactKeyAsAPI turns kine's stored compaction key back into the
// apiserver's, in reads (toPB) and watch events (watchhub.Config.FixKV).
func compactKeyAsAPI(kv *mvccpb.KeyValue) {
	if string(kv.Key) == compactRevAPI {
		kv.Key = []byte(compactRevKey)
		kv.Version, kv.Value = kineserver.DecodeVersion(kv.Value)
	}
}

// etcdWatchRange spells cr's range as etcd's watch server takes it: an
// empty key is "\x00", the smallest key (so an empty key alone watches
// that key, not every key).
func etcdWatchRange(cr *etcdserverpb.WatchCreateRequest) {
	if len(cr.Key) == 0 {
		cr.Key = []byte{0}
	}
}
