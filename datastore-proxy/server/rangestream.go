package server

import (
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// streamChunkBytes is about the most bytes of keys and values one chunk of
// a RangeStream answer holds (a chunk holds at least one key). kine's
// bridge aims at etcd's request limit, 1.5 MiB, too.
const streamChunkBytes = 1 << 20

// RangeStream is Range in chunks: what kube-apiserver v1.37 lists every
// resource with (the EtcdRangeStream feature, on by default). The answer
// is Range's, for the same request, cut into chunks of at most about
// streamChunkBytes; the last chunk carries the header, count and more, as
// etcd's does. It is admitted as a read: it passes the tenant's rate limit
// and waits for a read slot, as a Range does (a stream skips the unary
// Admit interceptor), and gives the slot back before it sends.
//
// Not kine's bridge: its RangeStream (kine v0.17.5 rangestream.go) counts
// a limited range at the latest revision, not the one it read the keys at,
// and reports that later revision in the header, which kube-apiserver
// takes as the list's resourceVersion: a change made between the read and
// the count, to a key the list returned, would be in neither the list nor
// the watch that starts from it. On a shared store, where other tenants
// move the revision all the time, that is the common case. It also lets
// one key past the limit through, with more false, when that key is alone
// in the last chunk (limits of 10, 30, 70...).
func (s *Server) RangeStream(r *etcdserverpb.RangeRequest, rs etcdserverpb.KV_RangeStreamServer) error {
	ctx := rs.Context()
	release, err := s.admit(ctx, false)
	if err != nil {
		return err
	}
	resp, err := s.Range(ctx, r)
	// The slot is the store's; a slow reader of the chunks holds none (as
	// a Range's answer is sent after its slot is given back).
	release()
	if err != nil {
		return err
	}
	if raw := resp.ProtoReflect().GetUnknown(); len(raw) > 0 {
		// listRaw's answer, still encoded: sent as one chunk unless large.
		if len(raw) <= streamChunkBytes {
			return rs.Send(&etcdserverpb.RangeStreamResponse{RangeResponse: resp})
		}
		resp = new(etcdserverpb.RangeResponse)
		if err := proto.Unmarshal(raw, resp); err != nil {
			return status.Errorf(codes.Internal, "kplex: decode the store's list: %v", err)
		}
	}
	for _, chunk := range chunks(resp) {
		if err := rs.Send(&etcdserverpb.RangeStreamResponse{RangeResponse: chunk}); err != nil {
			return err
		}
	}
	return nil
}

// chunks cuts resp into chunks of at most about streamChunkBytes of keys
// and values, in order; the last holds resp's header, more and count.
func chunks(resp *etcdserverpb.RangeResponse) []*etcdserverpb.RangeResponse {
	var out []*etcdserverpb.RangeResponse
	kvs := resp.Kvs
	for {
		n, size := 0, 0
		for n < len(kvs) {
			kvSize := len(kvs[n].Key) + len(kvs[n].Value)
			if n > 0 && size+kvSize > streamChunkBytes {
				break
			}
			size += kvSize
			n++
		}
		if n == len(kvs) {
			break
		}
		out = append(out, &etcdserverpb.RangeResponse{Kvs: kvs[:n]})
		kvs = kvs[n:]
	}
	return append(out, &etcdserverpb.RangeResponse{Header: resp.Header, Kvs: kvs, More: resp.More, Count: resp.Count})
}
