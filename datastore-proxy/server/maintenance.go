package server

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Status reports the tenant's view: the shared revision, no database size.
// kine's status has no revision (0, which etcdctl endpoint status showed):
// the header gets the store's.
func (s *Server) Status(ctx context.Context, r *etcdserverpb.StatusRequest) (*etcdserverpb.StatusResponse, error) {
	st, err := s.tenant(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := st.bridge.Status(ctx, r)
	if err != nil || resp.GetHeader().GetRevision() != 0 {
		return resp, err
	}
	rev, err := st.backend.CurrentRevision(ctx)
	if err != nil {
		return nil, err
	}
	if resp.Header == nil {
		resp.Header = &etcdserverpb.ResponseHeader{}
	}
	resp.Header.Revision = rev
	return resp, nil
}

// Alarm lists no alarms: a tenant past its quota gets "database space
// exceeded" on its writes alone, and the shared store's alarms are not a
// tenant's (etcdctl endpoint health lists them, and kine answered with an
// error, so a healthy proxy read as unhealthy). Raising or clearing one is
// refused.
func (s *Server) Alarm(ctx context.Context, r *etcdserverpb.AlarmRequest) (*etcdserverpb.AlarmResponse, error) {
	st, err := s.tenant(ctx)
	if err != nil {
		return nil, err
	}
	if r.Action != etcdserverpb.AlarmRequest_GET {
		return nil, denied("raising or clearing an alarm")
	}
	rev, err := st.backend.CurrentRevision(ctx)
	if err != nil {
		return nil, err
	}
	return &etcdserverpb.AlarmResponse{Header: &etcdserverpb.ResponseHeader{Revision: rev}}, nil
}

// The operations below act on the whole store and are never a tenant's.

func denied(op string) error {
	return status.Errorf(codes.PermissionDenied, "kplex: %s acts on the shared store and is not available to tenants", op)
}

// Defragment is refused.
func (s *Server) Defragment(context.Context, *etcdserverpb.DefragmentRequest) (*etcdserverpb.DefragmentResponse, error) {
	return nil, denied("defragment")
}

// Hash is refused.
func (s *Server) Hash(context.Context, *etcdserverpb.HashRequest) (*etcdserverpb.HashResponse, error) {
	return nil, denied("hash")
}

// HashKV is refused.
func (s *Server) HashKV(context.Context, *etcdserverpb.HashKVRequest) (*etcdserverpb.HashKVResponse, error) {
	return nil, denied("hashkv")
}

// Snapshot is refused.
func (s *Server) Snapshot(*etcdserverpb.SnapshotRequest, etcdserverpb.Maintenance_SnapshotServer) error {
	return denied("snapshot")
}

// MoveLeader is refused.
func (s *Server) MoveLeader(context.Context, *etcdserverpb.MoveLeaderRequest) (*etcdserverpb.MoveLeaderResponse, error) {
	return nil, denied("move-leader")
}

// Downgrade is refused.
func (s *Server) Downgrade(context.Context, *etcdserverpb.DowngradeRequest) (*etcdserverpb.DowngradeResponse, error) {
	return nil, denied("downgrade")
}
