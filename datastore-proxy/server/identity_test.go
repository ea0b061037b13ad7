package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// TestIdentifyResolvesOnce: after IdentifyUnary, handlers read the stored
// identity (here: the refusal for a context without a peer) rather than
// working it out again.
func TestIdentifyResolvesOnce(t *testing.T) {
	_, err := IdentifyUnary(context.Background(), nil, &grpc.UnaryServerInfo{}, func(ctx context.Context, _ any) (any, error) {
		if _, ok := ctx.Value(identityKey{}).(identity); !ok {
			t.Fatal("no identity stored for later interceptors")
		}
		_, err := TenantFromContext(ctx)
		return nil, err
	})
	if err == nil {
		t.Fatal("a call without a verified peer was not refused")
	}
}

// A client certificate names its tenant by its one CN. Go keeps the last
// of several CNs, where a CA's checks may read the first, so one with two
// (say a tenant's own, then another's) names no tenant; it was taken as
// the last one's.
func TestACertificateWithSeveralCommonNamesIsRefused(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cn := func(v string) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: v}
	}
	for _, tc := range []struct {
		name    string
		subject pkix.Name
		want    string // the tenant; "" refused
	}{
		{"one CN", pkix.Name{CommonName: "alpha"}, "alpha"},
		{"two CNs", pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{cn("alpha"), cn("beta")}}, ""},
		{"none", pkix.Name{Organization: []string{"alpha"}}, ""},
		{"not a tenant's name", pkix.Name{CommonName: "Alpha/x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: tc.subject, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}}})
			got, err := TenantFromContext(ctx)
			switch {
			case tc.want != "" && (err != nil || got != tc.want):
				t.Errorf("tenant %q, %v; want %q", got, err, tc.want)
			case tc.want == "" && status.Code(err) != codes.PermissionDenied:
				t.Errorf("tenant %q, %v; want PermissionDenied", got, err)
			}
		})
	}
}
