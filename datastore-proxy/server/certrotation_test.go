package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"kplex.dev/cli/pki"
	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/internal/testpki"
)

// The proxy's serving certificate and client CA are rotated in place (as
// cert-manager or a secret's volume does): new connections are served with
// the new ones within seconds, without a restart. (The files were read
// once: an expired serving certificate failed every tenant until a
// restart, and a replaced client CA was still trusted.)
func TestRotatedTLSFilesServeNewConnections(t *testing.T) {
	px := proxytest.Start(t, backend.Config{Kind: "sqlite"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := px.Client(t, "alpha")
	if _, err := before.Put(ctx, "/k", "v"); err != nil {
		t.Fatal(err)
	}

	ca2 := testpki.Write(t, px.Dir, "proxy-test-ca-2") // the client CA too

	// A client of the new CA, trusting it only, is served once the proxy
	// has read the files again.
	kp, err := ca2.Issue(pki.CertSpec{CommonName: "alpha", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca2.Cert)
	after := px.ClientWithTLS(t, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{{Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Key}}})
	deadline := time.Now().Add(15 * time.Second)
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := after.Get(rctx, "/k")
		rcancel()
		if err == nil && len(resp.Kvs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a client of the rotated CA, 15 s after the files changed: %v, %v", resp, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A new client of the old CA is not: the proxy no longer presents a
	// certificate it trusts, nor trusts its client certificate.
	old := px.ClientWithTLS(t, px.ClientTLS(t, "alpha", px.CA))
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
	defer rcancel()
	if _, err := old.Get(rctx, "/k"); err == nil {
		t.Fatal("a new client of the old CA was served after the rotation")
	}
}
