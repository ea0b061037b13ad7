package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	before := time.Now()
	ca := mustCA(t, "kplex-ca")
	c := ca.Cert
	if c.Subject.CommonName != "kplex-ca" || !c.IsCA || !c.BasicConstraintsValid {
		t.Fatalf("subject %q IsCA %v BasicConstraintsValid %v", c.Subject.CommonName, c.IsCA, c.BasicConstraintsValid)
	}
	want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	if c.KeyUsage != want {
		t.Errorf("KeyUsage = %v, want %v", c.KeyUsage, want)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
	}
	if d := c.NotAfter.Sub(before); d < 10*365*24*time.Hour-time.Minute || d > 10*366*24*time.Hour {
		t.Errorf("validity %v, want about 10 years", d)
	}
	if _, err := NewCA(""); err == nil {
		t.Error("NewCA(\"\") succeeded")
	}
}

func TestIssueVerify(t *testing.T) {
	ca := mustCA(t, "ca")
	other := mustCA(t, "other-ca")
	server := mustIssue(t, ca, serverSpec())
	client := mustIssue(t, ca, adminSpec())
	foreign := mustIssue(t, other, serverSpec())

	tests := []struct {
		name    string
		cert    *x509.Certificate
		roots   *CA
		dns     string
		usage   x509.ExtKeyUsage
		wantErr bool
	}{
		{name: "server by DNS name", cert: server.Cert, roots: ca, dns: "kubernetes.default.svc", usage: x509.ExtKeyUsageServerAuth},
		{name: "server by IP", cert: server.Cert, roots: ca, dns: "10.96.0.1", usage: x509.ExtKeyUsageServerAuth},
		{name: "server wrong name", cert: server.Cert, roots: ca, dns: "example.com", usage: x509.ExtKeyUsageServerAuth, wantErr: true},
		{name: "server not a client", cert: server.Cert, roots: ca, usage: x509.ExtKeyUsageClientAuth, wantErr: true},
		{name: "client", cert: client.Cert, roots: ca, usage: x509.ExtKeyUsageClientAuth},
		{name: "client not a server", cert: client.Cert, roots: ca, usage: x509.ExtKeyUsageServerAuth, wantErr: true},
		{name: "other CA's cert", cert: foreign.Cert, roots: ca, dns: "localhost", usage: x509.ExtKeyUsageServerAuth, wantErr: true},
		{name: "other CA's cert under other CA", cert: foreign.Cert, roots: other, dns: "localhost", usage: x509.ExtKeyUsageServerAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cert.Verify(x509.VerifyOptions{
				Roots:     pool(tt.roots),
				DNSName:   tt.dns,
				KeyUsages: []x509.ExtKeyUsage{tt.usage},
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Verify err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	if !slices.Equal(client.Cert.Subject.Organization, []string{"system:masters"}) {
		t.Errorf("client Organization = %q", client.Cert.Subject.Organization)
	}
}

func TestIssueProperties(t *testing.T) {
	ca := mustCA(t, "ca")
	before := time.Now()
	a := mustIssue(t, ca, serverSpec())
	b := mustIssue(t, ca, serverSpec())
	if a.Cert.SerialNumber.Cmp(b.Cert.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
	if n := a.Cert.SerialNumber.BitLen(); n > 128 || n < 64 {
		t.Errorf("serial has %d bits, want up to 128 (random)", n)
	}
	if skew := before.Sub(a.Cert.NotBefore); skew < 50*time.Second || skew > 2*time.Minute {
		t.Errorf("NotBefore is %v before issuing, want about a minute", skew)
	}
	if d := a.Cert.NotAfter.Sub(before); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("default validity %v, want one year", d)
	}
	if pub, ok := a.Cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", a.Cert.PublicKey)
	}
	if a.Cert.IsCA {
		t.Error("leaf is a CA")
	}
	short := serverSpec()
	short.Validity = time.Hour
	if d := mustIssue(t, ca, short).Cert.NotAfter.Sub(before); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("validity %v, want 1h", d)
	}
	long := serverSpec()
	long.Validity = 20 * 365 * 24 * time.Hour
	if got := mustIssue(t, ca, long).Cert.NotAfter; got.After(ca.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %v outlives CA %v", got, ca.Cert.NotAfter)
	}
}

func TestIssueRefusesBadSpec(t *testing.T) {
	ca := mustCA(t, "ca")
	tests := []struct {
		name string
		spec CertSpec
		want string
	}{
		{name: "neither server nor client", spec: CertSpec{CommonName: "x", DNSNames: []string{"x"}}, want: "neither Server nor Client"},
		{name: "no common name", spec: CertSpec{Server: true}, want: "common name"},
		{name: "negative validity", spec: CertSpec{CommonName: "x", Client: true, Validity: -time.Hour}, want: "negative validity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp, err := ca.Issue(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Issue = %v, %v; want error containing %q", kp, err, tt.want)
			}
		})
	}
	if _, err := (&CA{}).Issue(adminSpec()); err == nil {
		t.Error("Issue by an empty CA succeeded")
	}
	leaf := mustIssue(t, ca, adminSpec())
	if _, err := (&CA{Cert: leaf.Cert, Key: leaf.Key}).Issue(adminSpec()); err == nil {
		t.Error("Issue by a leaf certificate succeeded")
	}
}
