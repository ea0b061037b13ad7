package server

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Range reads the tenant's keys.
func (s *Server) Range(ctx context.Context, r *etcdserverpb.RangeRequest) (*etcdserverpb.RangeResponse, error) {
	b, err := s.bridge(ctx)
	if err != nil {
		return nil, err
	}
	return b.Range(ctx, r)
}

// RangeStream streams the tenant's keys.
func (s *Server) RangeStream(r *etcdserverpb.RangeRequest, rs etcdserverpb.KV_RangeStreamServer) error {
	b, err := s.bridge(rs.Context())
	if err != nil {
		return err
	}
	return b.RangeStream(r, rs)
}

// Put writes a tenant key.
func (s *Server) Put(ctx context.Context, r *etcdserverpb.PutRequest) (*etcdserverpb.PutResponse, error) {
	b, err := s.bridge(ctx)
	if err != nil {
		return nil, err
	}
	return b.Put(ctx, r)
}

// DeleteRange deletes tenant keys.
func (s *Server) DeleteRange(ctx context.Context, r *etcdserverpb.DeleteRangeRequest) (*etcdserverpb.DeleteRangeResponse, error) {
	b, err := s.bridge(ctx)
	if err != nil {
		return nil, err
	}
	return b.DeleteRange(ctx, r)
}

// Txn runs a transaction on tenant keys (the shapes kube-apiserver uses).
func (s *Server) Txn(ctx context.Context, r *etcdserverpb.TxnRequest) (*etcdserverpb.TxnResponse, error) {
	b, err := s.bridge(ctx)
	if err != nil {
		return nil, err
	}
	return b.Txn(ctx, r)
}

// Compact is accepted and does not compact the shared store
// (tenantbackend.Backend.Compact).
func (s *Server) Compact(ctx context.Context, r *etcdserverpb.CompactionRequest) (*etcdserverpb.CompactionResponse, error) {
	b, err := s.bridge(ctx)
	if err != nil {
		return nil, err
	}
	return b.Compact(ctx, r)
}
