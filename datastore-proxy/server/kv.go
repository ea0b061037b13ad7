package server

import (
	"bytes"
	"context"
	"slices"

	kineserver "github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Range reads the tenant's keys: a list straight from the store's answer
// where the backend can (rawlist.go), the rest through kine's bridge.
func (s *Server) Range(ctx context.Context, r *etcdserverpb.RangeRequest) (*etcdserverpb.RangeResponse, error) {
	st, err := s.tenant(ctx)
	if err != nil {
		return nil, err
	}
	if len(r.Key) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey // as etcd answers ("\x00" is the smallest key)
	}
	// etcd reads the latest revision for any revision <= 0; kine's read
	// of one key at -1 would find nothing.
	r.Revision = max(r.Revision, 0)
	if resp, ok, err := listRaw(ctx, st.backend, r); ok {
		return resp, err
	}
	if len(r.RangeEnd) > 0 {
		return st.bridge.Range(ctx, r)
	}
	return readKey(ctx, st.bridge, r)
}

// readKey reads the one key r names (no range end) through kine's bridge,
// as etcd answers for it: kine refuses a limit above 1 (one key is at most
// one anyway) and answers a count with the key too.
func readKey(ctx context.Context, b *kineserver.KVServerBridge, r *etcdserverpb.RangeRequest) (*etcdserverpb.RangeResponse, error) {
	if r.Limit > 1 {
		r.Limit = 0
	}
	if r.CountOnly {
		r.KeysOnly = true // the value is not needed to count it
	}
	resp, err := b.Range(ctx, r)
	if err == nil && r.CountOnly {
		resp.Kvs = nil
	}
	return resp, err
}

// Put writes a tenant key whatever it holds. It does not go through kine's
// bridge, whose put can acknowledge a write it lost to another
// (tenantbackend.Backend.Put says how).
func (s *Server) Put(ctx context.Context, r *etcdserverpb.PutRequest) (*etcdserverpb.PutResponse, error) {
	st, err := s.tenant(ctx)
	if err != nil {
		return nil, err
	}
	// What etcd and kine's put refuse, refused alike.
	switch {
	case len(r.Key) == 0:
		return nil, rpctypes.ErrGRPCEmptyKey
	case r.IgnoreValue:
		return nil, status.Error(codes.Unimplemented, "ignoreValue is not implemented by kine")
	case r.IgnoreLease:
		return nil, status.Error(codes.Unimplemented, "ignoreLease is not implemented by kine")
	}
	rev, prev, err := st.backend.Put(ctx, storedKey(string(r.Key)), r.Value, r.Lease)
	if err != nil {
		return nil, err
	}
	resp := &etcdserverpb.PutResponse{Header: &etcdserverpb.ResponseHeader{Revision: rev}}
	if r.PrevKv && prev != nil {
		resp.PrevKv = toPB(prev)
	}
	return resp, nil
}

// toPB is kv as etcd's API has it (kine's toKV, which is not exported).
func toPB(kv *kineserver.KeyValue) *mvccpb.KeyValue {
	out := &mvccpb.KeyValue{
		Key: []byte(kv.Key), Value: kv.Value, Version: kv.Version, Lease: kv.Lease,
		CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision,
	}
	compactKeyAsAPI(out)
	return out
}

// DeleteRange deletes tenant keys (tenantbackend.Backend.DeleteRange: kine
// has no range delete, and on its SQL backends the keys go one at a time).
func (s *Server) DeleteRange(ctx context.Context, r *etcdserverpb.DeleteRangeRequest) (*etcdserverpb.DeleteRangeResponse, error) {
	st, err := s.tenant(ctx)
	if err != nil {
		return nil, err
	}
	if len(r.Key) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey // as etcd answers, with or without an end
	}
	key, end := tenantRange(r.Key, r.RangeEnd)
	if end == "" {
		key = storedKey(key)
	}
	rev, n, prev, err := st.backend.DeleteRange(ctx, key, end, r.PrevKv)
	if err != nil {
		return nil, err
	}
	resp := &etcdserverpb.DeleteRangeResponse{Header: &etcdserverpb.ResponseHeader{Revision: rev}, Deleted: n}
	for _, kv := range prev {
		resp.PrevKvs = append(resp.PrevKvs, toPB(kv))
	}
	return resp, nil
}

// Txn runs a transaction on tenant keys (the shapes kube-apiserver uses).
func (s *Server) Txn(ctx context.Context, r *etcdserverpb.TxnRequest) (*etcdserverpb.TxnResponse, error) {
	b, err := s.bridge(ctx)
	if err != nil {
		return nil, err
	}
	if err := txnRefusal(r); err != nil {
		return nil, err // Admit refuses it before this; kept for callers without Admit
	}
	if key, failure, ok := deleteIfAbsent(r); ok {
		return s.deleteAbsent(ctx, b, key, failure)
	}
	return b.Txn(ctx, r)
}

// txnRefusal is why r is refused before it reaches the backend, or nil:
// what etcd refuses alike (an empty key), and what kine's bridge would
// run otherwise than asked (a put that keeps a value or lease, an
// operation on another key than the compared one: txnshape.go).
func txnRefusal(r *etcdserverpb.TxnRequest) error {
	if hasEmptyKey(r) {
		return rpctypes.ErrGRPCEmptyKey // as etcd answers
	}
	if p := unservedPut(r); p != nil {
		// kine's Txn put stores an empty value, or no lease, for these:
		// refused as a plain put refuses them, rather than data lost. And
		// it answers no previous value: refused rather than answered as if
		// the key had none.
		switch {
		case p.IgnoreValue:
			return status.Error(codes.Unimplemented, "ignoreValue is not implemented by kine")
		case p.IgnoreLease:
			return status.Error(codes.Unimplemented, "ignoreLease is not implemented by kine")
		}
		return status.Error(codes.Unimplemented, "prevKv in a transaction's put is not implemented by kine")
	}
	if what := otherKeyOp(r); what != "" {
		return status.Error(codes.Unimplemented, "a transaction's operations must all be on its compared key, with no range: "+what)
	}
	return nil
}

// deleteIfAbsent reports whether r deletes a key if it does not exist (its
// mod revision compared with 0), and returns the key and the read its
// failure does: kine reads that shape as a plain delete, which deletes the
// key if it does exist, where etcd's compare fails.
func deleteIfAbsent(r *etcdserverpb.TxnRequest) ([]byte, *etcdserverpb.RangeRequest, bool) {
	if len(r.Compare) != 1 || len(r.Success) != 1 || len(r.Failure) != 1 {
		return nil, nil, false
	}
	c, del, get := r.Compare[0], r.Success[0].GetRequestDeleteRange(), r.Failure[0].GetRequestRange()
	if c.Target != etcdserverpb.Compare_MOD || c.Result != etcdserverpb.Compare_EQUAL || c.GetModRevision() != 0 ||
		len(c.RangeEnd) != 0 || del == nil || len(del.RangeEnd) != 0 || !bytes.Equal(del.Key, c.Key) {
		return nil, nil, false
	}
	return c.Key, get, get != nil
}

// deleteAbsent answers a delete of key if it does not exist as etcd does:
// the key read, a success that deletes nothing when it is absent, and
// otherwise a failure with the failure's read (txnRefusal holds it to the
// key), with its options, at the revision the key was read at unless it
// names one.
func (s *Server) deleteAbsent(ctx context.Context, b *kineserver.KVServerBridge, key []byte, failure *etcdserverpb.RangeRequest) (*etcdserverpb.TxnResponse, error) {
	got, err := b.Range(ctx, &etcdserverpb.RangeRequest{Key: key})
	if err != nil {
		return nil, err
	}
	if len(got.Kvs) == 0 {
		return &etcdserverpb.TxnResponse{Header: got.Header, Succeeded: true, Responses: []*etcdserverpb.ResponseOp{{
			Response: &etcdserverpb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &etcdserverpb.DeleteRangeResponse{Header: got.Header}},
		}}}, nil
	}
	header := got.Header
	if !proto.Equal(failure, &etcdserverpb.RangeRequest{Key: key}) {
		read := proto.Clone(failure).(*etcdserverpb.RangeRequest)
		if read.Revision == 0 {
			read.Revision = header.GetRevision()
		}
		if got, err = readKey(ctx, b, read); err != nil {
			return nil, err
		}
	}
	return &etcdserverpb.TxnResponse{Header: header, Responses: []*etcdserverpb.ResponseOp{{
		Response: &etcdserverpb.ResponseOp_ResponseRange{ResponseRange: got},
	}}}, nil
}

// hasEmptyKey reports whether a compare or operation of r, nested ones
// included, has an empty key (kine would take it for the tenant's prefix).
func hasEmptyKey(r *etcdserverpb.TxnRequest) bool {
	emptyCompare := func(r *etcdserverpb.TxnRequest) bool {
		return slices.ContainsFunc(r.Compare, func(c *etcdserverpb.Compare) bool { return len(c.Key) == 0 })
	}
	return emptyCompare(r) || anyOp(r, func(op *etcdserverpb.RequestOp) bool {
		switch {
		case op.GetRequestRange() != nil:
			return len(op.GetRequestRange().Key) == 0
		case op.GetRequestPut() != nil:
			return len(op.GetRequestPut().Key) == 0
		case op.GetRequestDeleteRange() != nil:
			return len(op.GetRequestDeleteRange().Key) == 0
		case op.GetRequestTxn() != nil:
			return emptyCompare(op.GetRequestTxn())
		}
		return false
	})
}

// unservedPut is a put of r (nested transactions too) that kine's Txn
// would not serve as asked, if there is one: it asks to keep the key's
// value or lease, or for the key's previous value.
func unservedPut(r *etcdserverpb.TxnRequest) *etcdserverpb.PutRequest {
	return findPut(r, func(p *etcdserverpb.PutRequest) bool { return p.IgnoreValue || p.IgnoreLease || p.PrevKv })
}

// findPut is the first put of r (nested transactions too) that match
// takes, if there is one.
func findPut(r *etcdserverpb.TxnRequest, match func(*etcdserverpb.PutRequest) bool) (found *etcdserverpb.PutRequest) {
	anyOp(r, func(op *etcdserverpb.RequestOp) bool {
		if p := op.GetRequestPut(); p != nil && match(p) {
			found = p
		}
		return found != nil
	})
	return found
}

// txnWrites reports whether r (nested transactions too) has a put or a
// delete in either branch.
func txnWrites(r *etcdserverpb.TxnRequest) bool {
	return anyOp(r, func(op *etcdserverpb.RequestOp) bool {
		return op.GetRequestPut() != nil || op.GetRequestDeleteRange() != nil
	})
}

// anyOp reports whether f holds for an operation of r, in either branch,
// in the order etcd would list them; a nested transaction is an operation
// itself (before its own operations, which follow it).
func anyOp(r *etcdserverpb.TxnRequest, f func(*etcdserverpb.RequestOp) bool) bool {
	for _, ops := range [2][]*etcdserverpb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if f(op) {
				return true
			}
			if t := op.GetRequestTxn(); t != nil && anyOp(t, f) {
				return true
			}
		}
	}
	return false
}

// Compact is accepted and does not compact the shared store
// (tenantbackend.Backend.Compact), but for a revision the store has not
// reached, which etcd refuses as a future revision (and kine accepted).
func (s *Server) Compact(ctx context.Context, r *etcdserverpb.CompactionRequest) (*etcdserverpb.CompactionResponse, error) {
	st, err := s.tenant(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := st.bridge.Compact(ctx, r)
	if err != nil || r.Revision <= resp.GetHeader().GetRevision() {
		return resp, err
	}
	// Past the revision the bridge answered with, which kine keeps in
	// memory on SQL and can lag: the store's own decides.
	rev, err := st.backend.StoreRevision(ctx)
	if err != nil {
		return nil, err
	}
	if r.Revision > rev {
		return nil, rpctypes.ErrGRPCFutureRev
	}
	if resp.Header == nil {
		resp.Header = &etcdserverpb.ResponseHeader{}
	}
	resp.Header.Revision = rev
	return resp, nil
}
