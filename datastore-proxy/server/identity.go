package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/keyspace"
)

// TenantFromContext is the tenant of an RPC: the common name of the client
// certificate that the TLS handshake verified against the proxy's client
// CA. A connection without a verified certificate, or whose CN is not a
// valid tenant name, is refused.
func TenantFromContext(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "kplex: no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return "", status.Error(codes.Unauthenticated, "kplex: a client certificate signed by the proxy's client CA is required")
	}
	cn := info.State.VerifiedChains[0][0].Subject.CommonName
	if err := keyspace.ValidTenant(cn); err != nil {
		return "", status.Errorf(codes.PermissionDenied, "kplex: client certificate CN is not a tenant: %v", err)
	}
	return cn, nil
}
