package server

import (
	"context"
	"errors"
	"io"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// LeaseRevoke is not supported (leaseUnsupported).
func (s *Server) LeaseRevoke(ctx context.Context, _ *etcdserverpb.LeaseRevokeRequest) (*etcdserverpb.LeaseRevokeResponse, error) {
	if _, err := s.bridge(ctx); err != nil {
		return nil, err
	}
	return nil, leaseUnsupported("lease revoke")
}

// LeaseKeepAlive is not supported (leaseUnsupported), answered once the
// client's first request has come: a stream the proxy ended before that
// made the client's send fail with io.EOF, which etcd's client returned
// as the error (KeepAliveOnce), not the Unimplemented behind it.
func (s *Server) LeaseKeepAlive(ls etcdserverpb.Lease_LeaseKeepAliveServer) error {
	if _, err := s.bridge(ls.Context()); err != nil {
		return err
	}
	if _, err := ls.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return err // the client went away: its context's end
	}
	return leaseUnsupported("lease keep-alive")
}

// leaseUnsupported is the answer to a lease call the proxy does not serve:
// Unimplemented, which a client takes for a call that did nothing and is
// not worth retrying (kine's bridge answered Unknown, which a client may
// take for one that might have been applied).
func leaseUnsupported(what string) error {
	return status.Errorf(codes.Unimplemented, "kplex: %s is not supported: a lease is its TTL, and its keys expire after it (kine's model)", what)
}

// LeaseTimeToLive is not supported (leaseUnsupported).
func (s *Server) LeaseTimeToLive(ctx context.Context, _ *etcdserverpb.LeaseTimeToLiveRequest) (*etcdserverpb.LeaseTimeToLiveResponse, error) {
	if _, err := s.bridge(ctx); err != nil {
		return nil, err
	}
	return nil, leaseUnsupported("lease time to live")
}

// LeaseLeases is not supported (leaseUnsupported).
func (s *Server) LeaseLeases(ctx context.Context, _ *etcdserverpb.LeaseLeasesRequest) (*etcdserverpb.LeaseLeasesResponse, error) {
	if _, err := s.bridge(ctx); err != nil {
		return nil, err
	}
	return nil, leaseUnsupported("lease listing")
}
