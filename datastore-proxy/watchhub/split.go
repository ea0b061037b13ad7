package watchhub

import (
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// maxResponseBytes is about the largest watch response the hub
// sends a tenant. etcd answers a watch that fell behind with up to 1000
// revisions in one response, tens of megabytes with large values, larger
// than a gRPC client takes by default (4 MiB); the hub passes it on in
// responses of about this size instead, never splitting a revision.
const maxResponseBytes = 1 << 20

// splitEvents returns resp as responses of at most about max bytes of
// events each, cut between revisions only, with resp's header and watch
// ID; resp alone when it is smaller, carries no events, or is one of a
// fragmented response's parts (the tenant asked for those, and reads them
// whole).
func splitEvents(resp *etcdserverpb.WatchResponse, max int) []*etcdserverpb.WatchResponse {
	if len(resp.Events) < 2 || resp.Fragment || proto.Size(resp) <= max {
		return []*etcdserverpb.WatchResponse{resp}
	}
	var out []*etcdserverpb.WatchResponse
	start, size := 0, 0
	for i, ev := range resp.Events {
		if i > start && size >= max && ev.Kv.ModRevision != resp.Events[i-1].Kv.ModRevision {
			out = append(out, part(resp, start, i))
			start, size = i, 0
		}
		size += proto.Size(ev)
	}
	return append(out, part(resp, start, len(resp.Events)))
}

// part is resp with its events [i, j) only.
func part(resp *etcdserverpb.WatchResponse, i, j int) *etcdserverpb.WatchResponse {
	return &etcdserverpb.WatchResponse{
		Header: resp.Header, WatchId: resp.WatchId, CompactRevision: resp.CompactRevision,
		Events: resp.Events[i:j:j],
	}
}
