package server

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// MemberList reports the proxy as the one member.
func (s *Server) MemberList(ctx context.Context, r *etcdserverpb.MemberListRequest) (*etcdserverpb.MemberListResponse, error) {
	b, err := s.bridge(ctx)
	if err != nil {
		return nil, err
	}
	return b.MemberList(ctx, r)
}

// MemberAdd is refused.
func (s *Server) MemberAdd(context.Context, *etcdserverpb.MemberAddRequest) (*etcdserverpb.MemberAddResponse, error) {
	return nil, denied("member-add")
}

// MemberRemove is refused.
func (s *Server) MemberRemove(context.Context, *etcdserverpb.MemberRemoveRequest) (*etcdserverpb.MemberRemoveResponse, error) {
	return nil, denied("member-remove")
}

// MemberUpdate is refused.
func (s *Server) MemberUpdate(context.Context, *etcdserverpb.MemberUpdateRequest) (*etcdserverpb.MemberUpdateResponse, error) {
	return nil, denied("member-update")
}

// MemberPromote is refused.
func (s *Server) MemberPromote(context.Context, *etcdserverpb.MemberPromoteRequest) (*etcdserverpb.MemberPromoteResponse, error) {
	return nil, denied("member-promote")
}
