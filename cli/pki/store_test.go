package pki

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mode returns the permission bits of path.
func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestWriteLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki", "etcd") // created by WriteFiles
	ca := mustCA(t, "etcd-ca")
	if err := ca.WriteFiles(dir, "ca"); err != nil {
		t.Fatal(err)
	}
	kp := mustIssue(t, ca, serverSpec())
	if err := kp.WriteFiles(dir, "server"); err != nil {
		t.Fatal(err)
	}

	for path, want := range map[string]fs.FileMode{
		dir:                                   0o700,
		filepath.Join(dir, "ca.crt"):          0o644,
		filepath.Join(dir, "ca.key"):          0o600,
		filepath.Join(dir, "server.crt"):      0o644,
		filepath.Join(dir, "server.key"):      0o600,
		filepath.Join(dir, "..", "..", "pki"): 0o700,
	} {
		if got := mode(t, path); got != want {
			t.Errorf("%s mode %v, want %v", path, got, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Errorf("dir holds %d entries, want 4 (no temp files left)", len(entries))
	}
	if !bytes.Contains(readFile(t, filepath.Join(dir, "server.key")), []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Error("key is not PKCS#8 PEM")
	}

	gotCA, err := LoadCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	if !gotCA.Cert.Equal(ca.Cert) || !publicKeysEqual(gotCA.Key.Public(), ca.Key.Public()) {
		t.Error("loaded CA differs from written CA")
	}
	gotKP, err := LoadKeyPair(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	if !gotKP.Cert.Equal(kp.Cert) || !publicKeysEqual(gotKP.Key.Public(), kp.Key.Public()) {
		t.Error("loaded key pair differs from written key pair")
	}
	// The loaded CA must still be able to sign.
	if _, err := gotCA.Issue(adminSpec()); err != nil {
		t.Errorf("Issue by loaded CA: %v", err)
	}

	// Rewriting replaces the files and keeps their modes.
	kp2 := mustIssue(t, ca, serverSpec())
	if err := kp2.WriteFiles(dir, "server"); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadKeyPair(dir, "server"); err != nil || !got.Cert.Equal(kp2.Cert) {
		t.Errorf("after rewrite: err %v, same cert %v", err, err == nil && got.Cert.Equal(kp2.Cert))
	}
	if got := mode(t, filepath.Join(dir, "server.key")); got != 0o600 {
		t.Errorf("rewritten key mode %v", got)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, "ca")
	leaf := mustIssue(t, ca, adminSpec())
	other := mustIssue(t, ca, adminSpec())
	if err := ca.WriteFiles(dir, "ca"); err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteFiles(dir, "leaf"); err != nil {
		t.Fatal(err)
	}
	// mismatch: leaf's certificate with another key.
	writeFile(t, filepath.Join(dir, "mismatch.crt"), leaf.CertPEM())
	otherKey, _ := other.KeyPEM()
	writeFile(t, filepath.Join(dir, "mismatch.key"), otherKey)
	writeFile(t, filepath.Join(dir, "garbage.crt"), []byte("not pem"))
	writeFile(t, filepath.Join(dir, "garbage.key"), otherKey)

	tests := []struct {
		name       string
		load       func(dir, name string) error
		file       string
		wantAbsent bool
		want       string
	}{
		{name: "absent CA", load: loadCAErr, file: "nope", wantAbsent: true},
		{name: "absent key pair", load: loadKPErr, file: "nope", wantAbsent: true},
		{name: "leaf as CA", load: loadCAErr, file: "leaf", want: "not a CA"},
		{name: "mismatched pair", load: loadKPErr, file: "mismatch", want: "mismatch.key does not match"},
		{name: "garbage cert", load: loadKPErr, file: "garbage", want: "garbage.crt"},
		{name: "bad name", load: loadKPErr, file: "../ca", want: "invalid file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.load(dir, tt.file)
			if err == nil {
				t.Fatal("load succeeded")
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.wantAbsent {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v", err, got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	// The good ones load, so the failures above are not from a broken dir.
	if err := loadCAErr(dir, "ca"); err != nil {
		t.Error(err)
	}
	if err := loadKPErr(dir, "leaf"); err != nil {
		t.Error(err)
	}
}

func loadCAErr(dir, name string) error { _, err := LoadCA(dir, name); return err }

func loadKPErr(dir, name string) error { _, err := LoadKeyPair(dir, name); return err }

func TestLoadOrCreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	first, err := LoadOrCreateCA(dir, "ca", "kplex-ca")
	if err != nil {
		t.Fatal(err)
	}
	if first.Cert.Subject.CommonName != "kplex-ca" {
		t.Errorf("CN %q", first.Cert.Subject.CommonName)
	}
	second, err := LoadOrCreateCA(dir, "ca", "kplex-ca")
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cert.Equal(first.Cert) {
		t.Error("second call returned a different CA")
	}
	if !publicKeysEqual(second.Key.Public(), first.Key.Public()) {
		t.Error("second call returned a different key")
	}
}

func TestLoadOrCreateCARefuses(t *testing.T) {
	ca := mustCA(t, "ca")
	caKey, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := mustCA(t, "other").KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		crt, key []byte // nil: absent
		want     string
	}{
		{name: "lone key", key: caKey, want: "ca.key exists without"},
		{name: "lone cert", crt: ca.CertPEM(), want: "ca.crt exists without"},
		{name: "mismatched pair", crt: ca.CertPEM(), key: otherKey, want: "ca.key does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.crt != nil {
				writeFile(t, filepath.Join(dir, "ca.crt"), tt.crt)
			}
			if tt.key != nil {
				writeFile(t, filepath.Join(dir, "ca.key"), tt.key)
			}
			got, err := LoadOrCreateCA(dir, "ca", "ca")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadOrCreateCA = %v, %v; want error containing %q", got, err, tt.want)
			}
			// Nothing was replaced or added.
			for file, want := range map[string][]byte{"ca.crt": tt.crt, "ca.key": tt.key} {
				b, err := os.ReadFile(filepath.Join(dir, file))
				if want == nil {
					if !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("%s was created (err %v)", file, err)
					}
				} else if !bytes.Equal(b, want) {
					t.Errorf("%s was changed", file)
				}
			}
		})
	}
}
