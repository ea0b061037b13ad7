package server

import (
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/keyspace"
)

// TenantFromContext is the tenant of an RPC: the common name of the client
// certificate that the TLS handshake verified against the proxy's client
// CA. A connection without a verified certificate, or whose CN is not a
// valid tenant name, is refused. When the Identify interceptors ran, the
// answer they stored is returned instead of working it out again.
func TenantFromContext(ctx context.Context) (string, error) {
	if id, ok := ctx.Value(identityKey{}).(identity); ok {
		return id.tenant, id.err
	}
	return tenantFromPeer(ctx)
}

func tenantFromPeer(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "kplex: no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return "", status.Error(codes.Unauthenticated, "kplex: a client certificate signed by the proxy's client CA is required")
	}
	subject := info.State.VerifiedChains[0][0].Subject
	// Go keeps the last of several CNs, where a CA's checks may read the
	// first: a certificate with more than one names no tenant.
	if n := commonNames(subject); n != 1 {
		return "", status.Errorf(codes.PermissionDenied, "kplex: the client certificate's subject has %d common names; a tenant's has one", n)
	}
	cn := subject.CommonName
	if err := keyspace.ValidTenant(cn); err != nil {
		return "", status.Errorf(codes.PermissionDenied, "kplex: client certificate CN is not a tenant: %v", err)
	}
	return cn, nil
}

// commonNames counts the CN attributes of a subject.
func commonNames(n pkix.Name) int {
	var c int
	for _, a := range n.Names {
		if a.Type.Equal(oidCommonName) {
			c++
		}
	}
	return c
}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

type identityKey struct{}

type identity struct {
	tenant string
	err    error
}

func withIdentity(ctx context.Context) context.Context {
	tenant, err := tenantFromPeer(ctx)
	return context.WithValue(ctx, identityKey{}, identity{tenant, err})
}

// IdentifyUnary is the first unary interceptor: it works out the caller's
// tenant once per RPC for every later interceptor and handler. It refuses
// nothing itself, so the metrics still count refused calls; the handlers
// refuse through TenantFromContext.
func IdentifyUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(withIdentity(ctx), req)
}

// IdentifyStream is IdentifyUnary for streams (watches, keep-alives).
func IdentifyStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &identifiedStream{ServerStream: ss, ctx: withIdentity(ss.Context())})
}

type identifiedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identifiedStream) Context() context.Context { return s.ctx }
