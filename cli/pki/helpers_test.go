package pki

import (
	"crypto/x509"
	"net"
	"os"
	"testing"
)

// mustCA creates a CA or fails the test.
func mustCA(t *testing.T, cn string) *CA {
	t.Helper()
	ca, err := NewCA(cn)
	if err != nil {
		t.Fatalf("NewCA(%q): %v", cn, err)
	}
	return ca
}

// mustIssue issues a leaf or fails the test.
func mustIssue(t *testing.T, ca *CA, spec CertSpec) *KeyPair {
	t.Helper()
	kp, err := ca.Issue(spec)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", spec, err)
	}
	return kp
}

// pool returns a cert pool holding the CAs' certificates.
func pool(cas ...*CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

// serverSpec is an apiserver-like serving certificate.
func serverSpec() CertSpec {
	return CertSpec{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"localhost", "kubernetes.default.svc"},
		IPs:        []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		Server:     true,
	}
}

// adminSpec is an admin client certificate.
func adminSpec() CertSpec {
	return CertSpec{
		CommonName:   "kubernetes-admin",
		Organization: []string{"system:masters"},
		Client:       true,
	}
}

// readFile reads a file or fails the test.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile writes a file or fails the test.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
