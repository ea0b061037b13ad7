package server

import (
	"context"
	"slices"
	"strings"
	"sync"

	kineserver "github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/tenantbackend"
	"kplex.dev/datastore-proxy/watchhub"
)

// Watch serves a tenant's watch stream: events of its own keys only.
//
// The stream is wrapped so that each create request's key range reaches the
// tenant backend (tenantbackend.WithWatchRange): the shared store is then
// asked for that range alone, not for every change of every tenant.
//
// It also reserves each create request's place among the tenant's
// maxWatches, and refuses a create over the limit itself, as etcd refuses
// a create it cannot serve (tenantbackend/watchlimit.go says why here).
//
// On etcd the tenant's watch streams share an etcd watch stream of its own
// instead (watchhub says why).
func (s *Server) Watch(ws etcdserverpb.Watch_WatchServer) error {
	st, err := s.tenant(ws.Context())
	if err != nil {
		return err
	}
	if st.hub != nil {
		return st.hub.Serve(ws)
	}
	rs := &rangeStream{Watch_WatchServer: ws, ctx: ws.Context(), tb: st.backend, ids: watchIDs{local: map[int64]int64{}, kine: map[int64]int64{}},
		admit: st.admitWatch}
	defer rs.dropReservations()
	return st.bridge.Watch(rs)
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
// key as kine stores it (watchhub.Config.Range, and kine's bridge's
// watches). A range is left as it is, as DeleteRange leaves it: renamed,
// a prefix watch on "compact_rev_key" missed "compact_rev_key/x".
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

// fromKeyEnd stands for "no end" in the range kine filters a watch's
// events by. kine (server.Event.InRange) takes an end of "\x00", etcd's
// "every key from this one on", as the key alone, so a from-key watch
// would see only its first key; the backend already watches the whole
// range (keyspace.Range), and kine's filter needs an end past every key.
// A key that starts with 64 bytes of 0xff is past it; PostgreSQL and MySQL
// cannot store one at all (not UTF-8).
var fromKeyEnd = []byte(strings.Repeat("\xff", 64))

// kineFromKey gives a from-key watch (end "\x00", key not "\x00")
// fromKeyEnd for kine's filter, once the backend's range is taken.
func kineFromKey(cr *etcdserverpb.WatchCreateRequest) {
	if string(cr.RangeEnd) == "\x00" && string(cr.Key) != "\x00" {
		cr.RangeEnd = fromKeyEnd
	}
}

// rangeStream's Context carries the range of the create request it last
// received: kine reads a request and calls Create(ws.Context(), request)
// right after, so each create's context carries its own range.
type rangeStream struct {
	etcdserverpb.Watch_WatchServer
	tb  *tenantbackend.Backend
	mu  sync.Mutex
	ctx context.Context
	// reserved are places reserved by this stream's create requests that
	// a watch may not have taken yet.
	reserved []*tenantbackend.Reservation
	sendMu   sync.Mutex // kine's sends and this stream's refusals
	ids      watchIDs
	opts     watchOptions                    // what kine does not do of each create request
	order    createOrder                     // refusals after the answers before them
	admit    func(ctx context.Context) error // the tenant's admitWatch
}

// reserve admits a create request and reserves its place among the
// tenant's watches.
func (r *rangeStream) reserve() (*tenantbackend.Reservation, error) {
	if err := r.admit(r.Watch_WatchServer.Context()); err != nil {
		return nil, err
	}
	return r.tb.ReserveWatch()
}

func (r *rangeStream) Context() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ctx
}

func (r *rangeStream) Recv() (*etcdserverpb.WatchRequest, error) {
	for {
		msg, err := r.Watch_WatchServer.Recv()
		if err != nil {
			return msg, err
		}
		if c := msg.GetCancelRequest(); c != nil {
			c.WatchId = r.ids.toKine(c.WatchId)
		}
		cr := msg.GetCreateRequest()
		if cr == nil {
			return msg, nil
		}
		// Every create kine would refuse at once is refused here, in its
		// turn (createorder.go): kine's own refusal was sent from its
		// reading loop, ahead of answers it still owed.
		refusal := watchhub.RefusedFirst(cr)
		if refusal == nil && cr.WatchId != clientv3.AutoWatchID {
			refusal = kineserver.ErrInvalidWatch // kine takes no watch ID from a client
		}
		var res *tenantbackend.Reservation
		if refusal == nil {
			res, refusal = r.reserve()
		}
		if refusal != nil {
			if err := r.refuse(refusal); err != nil {
				return nil, err
			}
			continue
		}
		key, end := createRange(cr)
		kineFromKey(cr)
		ctx := tenantbackend.WithWatchRange(r.Watch_WatchServer.Context(), tenantbackend.WatchRange{Key: key, End: end, Revision: cr.StartRevision})
		opts := optsOf(cr)
		ctx = tenantbackend.WithWatchStart(ctx, func() { r.opts.queue(opts) })
		ctx = tenantbackend.WithReservation(ctx, res)
		r.order.passed()
		r.mu.Lock()
		r.reserved = append(slices.DeleteFunc(r.reserved, func(x *tenantbackend.Reservation) bool { return !x.Held() }), res)
		r.ctx = ctx
		r.mu.Unlock()
		return msg, nil
	}
}

// Send is the stream's Send, one at a time: kine's sends and refusals,
// with the stream's own watch IDs.
func (r *rangeStream) Send(m *etcdserverpb.WatchResponse) error {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	if !r.opts.filter(m) {
		return nil // events the watch did not ask for, and no others
	}
	if m.Created && m.WatchId != clientv3.InvalidWatchID {
		r.order.answered()
	}
	id, ok := r.ids.fromKine(m.WatchId, m.Created, m.Canceled)
	if !ok {
		return nil // a watch the stream no longer has (watchids.go)
	}
	m.WatchId = id
	return r.Watch_WatchServer.Send(m)
}

// refuse answers a create request with err, as etcd answers a create it
// cannot serve: created and canceled at once, with no watch ID.
func (r *rangeStream) refuse(err error) error {
	if err := r.order.wait(r.Watch_WatchServer.Context()); err != nil {
		return status.FromContextError(err).Err()
	}
	rev, _ := r.tb.CurrentRevision(r.Watch_WatchServer.Context())
	return r.Send(&etcdserverpb.WatchResponse{
		Header:  &etcdserverpb.ResponseHeader{Revision: rev},
		WatchId: clientv3.InvalidWatchID, Created: true, Canceled: true, CancelReason: err.Error(),
	})
}

// dropReservations gives back the places that no watch took.
func (r *rangeStream) dropReservations() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, res := range r.reserved {
		res.Drop()
	}
	r.reserved = nil
}
