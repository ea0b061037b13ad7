package server

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"kplex.dev/datastore-proxy/leaseid"
)

// Leases follow kine: a lease is its TTL (the lease ID is the TTL in
// seconds) and keys written with it expire after that TTL. No lease state
// is shared, so no tenant can see, revoke or keep alive another's lease;
// revoke, keep-alive and listing are refused for every tenant alike.

// LeaseGrant grants a TTL lease: as etcd, it refuses a TTL longer than
// etcd's longest and raises one shorter than etcd's shortest (kine would
// answer 0, "no lease", for a TTL of 0, and a key put with it would never
// expire).
func (s *Server) LeaseGrant(ctx context.Context, r *etcdserverpb.LeaseGrantRequest) (*etcdserverpb.LeaseGrantResponse, error) {
	b, err := s.bridge(ctx)
	if err != nil {
		return nil, err
	}
	if r.TTL > leaseid.MaxTTL {
		return nil, rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	r.TTL = max(r.TTL, leaseid.MinTTL)
	return b.LeaseGrant(ctx, r)
}

// LeaseRevoke is not supported.
func (s *Server) LeaseRevoke(ctx context.Context, r *etcdserverpb.LeaseRevokeRequest) (*etcdserverpb.LeaseRevokeResponse, error) {
	b, err := s.bridge(ctx)
	if err != nil {
		return nil, err
	}
	return b.LeaseRevoke(ctx, r)
}

// LeaseKeepAlive is not supported.
func (s *Server) LeaseKeepAlive(ls etcdserverpb.Lease_LeaseKeepAliveServer) error {
	b, err := s.bridge(ls.Context())
	if err != nil {
		return err
	}
	return b.LeaseKeepAlive(ls)
}

// LeaseTimeToLive is not supported.
func (s *Server) LeaseTimeToLive(ctx context.Context, r *etcdserverpb.LeaseTimeToLiveRequest) (*etcdserverpb.LeaseTimeToLiveResponse, error) {
	b, err := s.bridge(ctx)
	if err != nil {
		return nil, err
	}
	return b.LeaseTimeToLive(ctx, r)
}

// LeaseLeases is not supported.
func (s *Server) LeaseLeases(ctx context.Context, r *etcdserverpb.LeaseLeasesRequest) (*etcdserverpb.LeaseLeasesResponse, error) {
	b, err := s.bridge(ctx)
	if err != nil {
		return nil, err
	}
	return b.LeaseLeases(ctx, r)
}
