// Package testpki writes the TLS files a proxy serves with, for tests.
package testpki

import (
	"net"
	"testing"

	"kplex.dev/cli/pki"
)

// Write makes a CA of that name and a serving certificate for 127.0.0.1
// that it signs, and writes them to dir as ca.crt and ca.key, serving.crt
// and serving.key: the proxy's --client-ca-file, --tls-cert-file and
// --tls-key-file. Tenants' client certificates are the CA's to issue.
func Write(t testing.TB, dir, name string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.Issue(pki.CertSpec{CommonName: "proxy", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteFiles(dir, "ca"); err != nil {
		t.Fatal(err)
	}
	if err := serving.WriteFiles(dir, "serving"); err != nil {
		t.Fatal(err)
	}
	return ca
}
