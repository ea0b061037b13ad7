package server

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"kplex.dev/datastore-proxy/rangewire"
)

// A RangeStream reads the store a page at a time, pinned to the first
// page's revision, and sends each page as a chunk as it comes, so that a
// list of a whole resource (kube-apiserver's watch cache asks for one, with
// no limit) holds one page in the proxy, not the list. Pages start at
// firstPageKeys keys and grow or shrink towards about pageBytes.
const (
	firstPageKeys = 100
	minPageKeys   = 10
	maxPageKeys   = 10000
	pageBytes     = 1 << 20
)

// RangeStream is Range in chunks: what kube-apiserver v1.37 lists every
// resource with (the EtcdRangeStream feature, on by default). Its answer
// is the one Range gives for the same request, as etcd's is: the same
// keys, count and more; the header, count and more on the last chunk
// only. A list that fits in one page is that Range's answer, whole; a
// longer one is read in pages of Range at the first page's revision (so
// it is one revision's list, as etcd streams it), each page a chunk.
// Each page is admitted as a read: the tenant's rate limit once, a read
// slot per page, given back before the page is sent (a slow reader holds
// none).
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
	tenant, err := TenantFromContext(ctx)
	if err != nil {
		return err
	}
	if err := s.rateLimit(ctx, tenant); err != nil {
		return err
	}
	limit := max(r.Limit, 0)
	req := proto.Clone(r).(*etcdserverpb.RangeRequest)
	req.Revision = max(req.Revision, 0) // the latest, as etcd reads it; then the first page's
	pageKeys := int64(firstPageKeys)
	if !r.CountOnly && (limit == 0 || limit > pageKeys) {
		req.Limit = pageKeys
	}
	var header []byte
	var count, sent int64
	for first := true; ; first = false {
		resp, err := s.rangePage(ctx, tenant, req)
		if err != nil {
			return err
		}
		p, err := rangewire.Split(encoded(resp))
		if err != nil {
			return status.Errorf(codes.Internal, "kplex: %v", err)
		}
		sent += int64(p.N)
		switch {
		case first && (r.CountOnly || !p.More || (limit > 0 && sent >= limit)):
			// One page holds the answer: Range's, as it is.
			return rs.Send(&etcdserverpb.RangeStreamResponse{RangeResponse: resp})
		case p.N == 0 && p.More:
			return status.Error(codes.Internal, "kplex: the store answered a page with no keys and more to come")
		case !p.More || (limit > 0 && sent >= limit):
			return rs.Send(&etcdserverpb.RangeStreamResponse{RangeResponse: encodedRange(rangewire.Final(header, p.Kvs, p.More, count))})
		case first:
			header, count = p.Header, p.Count
			if req.Revision == 0 {
				req.Revision = p.Revision()
			}
		}
		if err := rs.Send(&etcdserverpb.RangeStreamResponse{RangeResponse: encodedRange(p.Kvs)}); err != nil {
			return err
		}
		pageKeys = nextPageKeys(pageKeys, len(p.Kvs))
		// A copy: p.Last is in the page's bytes, which gRPC may still be
		// sending.
		req.Key = append(append([]byte(nil), nextPageStart(p.Last)...), 0)
		req.Limit = pageKeys
		if limit > 0 {
			req.Limit = min(pageKeys, limit-sent)
		}
	}
}

// rangePage reads one page as Range, holding a read slot of tenant's
// meanwhile.
func (s *Server) rangePage(ctx context.Context, tenant string, r *etcdserverpb.RangeRequest) (*etcdserverpb.RangeResponse, error) {
	release, err := s.slot(ctx, tenant, false)
	if err != nil {
		return nil, err
	}
	defer release()
	return s.Range(ctx, r)
}

// nextPageKeys is the next page's size after a page of n keys took size
// bytes: doubled under half of pageBytes, halved over twice of it.
func nextPageKeys(n int64, size int) int64 {
	switch {
	case size < pageBytes/2:
		n *= 2
	case size > 2*pageBytes:
		n /= 2
	}
	return min(max(n, minPageKeys), maxPageKeys)
}

// nextPageStart is the stored key a page that ended with the client key
// last ends at: the client sees kine's compaction key under the
// apiserver's name (toPB), which sorts before where kine keeps it.
func nextPageStart(last []byte) []byte {
	if string(last) == compactRevKey {
		return []byte(compactRevAPI)
	}
	return last
}

// encoded is resp's encoding: listRaw's bytes as they are, anything else
// marshalled.
func encoded(resp *etcdserverpb.RangeResponse) []byte {
	if raw := rawOnly(resp); len(raw) > 0 {
		return raw
	}
	b, _ := proto.Marshal(resp) // a RangeResponse always marshals
	return b
}
