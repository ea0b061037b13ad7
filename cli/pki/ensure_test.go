package pki

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestEnsureKeyPair(t *testing.T) {
	ca := mustCA(t, "ca")
	other := mustCA(t, "other")

	moreDNS := serverSpec()
	moreDNS.DNSNames = append(moreDNS.DNSNames, "kubernetes")
	otherIP := serverSpec()
	otherIP.IPs = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.10")}
	renamed := serverSpec()
	renamed.CommonName = "apiserver"
	asClient := serverSpec()
	asClient.Client = true
	reordered := serverSpec()
	reordered.DNSNames = []string{"kubernetes.default.svc", "localhost"}
	reordered.IPs = []net.IP{net.ParseIP("10.96.0.1").To4(), net.ParseIP("127.0.0.1")}
	short := serverSpec()
	short.Validity = 29 * 24 * time.Hour
	longEnough := serverSpec()
	longEnough.Validity = 31 * 24 * time.Hour
	admin := adminSpec()
	viewer := adminSpec()
	viewer.Organization = []string{"viewers"}

	tests := []struct {
		name         string
		existing     *CA      // issuer of the existing pair; nil: no files
		existingSpec CertSpec // spec of the existing pair
		spec         CertSpec // spec passed to EnsureKeyPair
		wantReissued bool
	}{
		{name: "absent", spec: serverSpec(), wantReissued: true},
		{name: "valid and matching", existing: ca, existingSpec: serverSpec(), spec: serverSpec()},
		{name: "same names in another order", existing: ca, existingSpec: serverSpec(), spec: reordered},
		{name: "31 days left", existing: ca, existingSpec: longEnough, spec: serverSpec()},
		{name: "DNS name added", existing: ca, existingSpec: serverSpec(), spec: moreDNS, wantReissued: true},
		{name: "IP changed", existing: ca, existingSpec: serverSpec(), spec: otherIP, wantReissued: true},
		{name: "common name changed", existing: ca, existingSpec: serverSpec(), spec: renamed, wantReissued: true},
		{name: "usage added", existing: ca, existingSpec: serverSpec(), spec: asClient, wantReissued: true},
		{name: "organization changed", existing: ca, existingSpec: admin, spec: viewer, wantReissued: true},
		{name: "expires within 30 days", existing: ca, existingSpec: short, spec: serverSpec(), wantReissued: true},
		{name: "signed by another CA", existing: other, existingSpec: serverSpec(), spec: serverSpec(), wantReissued: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var old *KeyPair
			if tt.existing != nil {
				old = mustIssue(t, tt.existing, tt.existingSpec)
				if err := old.WriteFiles(dir, "apiserver"); err != nil {
					t.Fatal(err)
				}
			}
			kp, reissued, err := ca.EnsureKeyPair(dir, "apiserver", tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if reissued != tt.wantReissued {
				t.Fatalf("reissued = %v, want %v", reissued, tt.wantReissued)
			}
			if old != nil && kp.Cert.Equal(old.Cert) == reissued {
				t.Errorf("returned the old certificate: %v, reissued %v", kp.Cert.Equal(old.Cert), reissued)
			}
			// What is returned is what is on disk and fits the spec.
			onDisk, err := LoadKeyPair(dir, "apiserver")
			if err != nil {
				t.Fatal(err)
			}
			if !onDisk.Cert.Equal(kp.Cert) {
				t.Error("returned pair is not the one on disk")
			}
			if err := ca.fits(kp.Cert, tt.spec, time.Now()); err != nil {
				t.Errorf("returned pair does not fit the spec: %v", err)
			}
			// A second call keeps it.
			again, reissued, err := ca.EnsureKeyPair(dir, "apiserver", tt.spec)
			if err != nil || reissued || !again.Cert.Equal(kp.Cert) {
				t.Errorf("second call: err %v, reissued %v", err, reissued)
			}
		})
	}
}

func TestEnsureKeyPairReplacesBrokenFiles(t *testing.T) {
	ca := mustCA(t, "ca")
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{name: "lone cert", setup: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "x.crt"), mustIssue(t, ca, adminSpec()).CertPEM())
		}},
		{name: "garbage", setup: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "x.crt"), []byte("garbage"))
			writeFile(t, filepath.Join(dir, "x.key"), []byte("garbage"))
		}},
		{name: "mismatched key", setup: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "x.crt"), mustIssue(t, ca, adminSpec()).CertPEM())
			key, err := mustIssue(t, ca, adminSpec()).KeyPEM()
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "x.key"), key)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			_, reissued, err := ca.EnsureKeyPair(dir, "x", adminSpec())
			if err != nil || !reissued {
				t.Fatalf("err %v, reissued %v", err, reissued)
			}
			if _, err := LoadKeyPair(dir, "x"); err != nil {
				t.Error(err)
			}
		})
	}
	if _, _, err := ca.EnsureKeyPair(t.TempDir(), "x", CertSpec{CommonName: "x"}); err == nil {
		t.Error("EnsureKeyPair accepted a spec with neither Server nor Client")
	}
}
