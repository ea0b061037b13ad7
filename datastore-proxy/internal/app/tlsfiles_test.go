package app

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kplex.dev/cli/pki"
	"kplex.dev/datastore-proxy/internal/testpki"
)

// Files that changed but cannot be used (here a certificate cut short, as
// when read half written) leave the ones before in use; once they change
// again and can be used, they are.
func TestUnusableTLSFilesLeaveTheOnesBefore(t *testing.T) {
	dir := t.TempDir()
	write := func(name string) *pki.CA { return testpki.Write(t, dir, name) }
	write("first")
	f := &tlsFiles{cert: filepath.Join(dir, "serving.crt"), key: filepath.Join(dir, "serving.key"), ca: filepath.Join(dir, "ca.crt"),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.stamp = f.stampNow()
	cfg, err := f.read()
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	first := cfg.Certificates[0].Leaf

	pem, err := os.ReadFile(f.cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.cert, pem[:len(pem)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	f.checked = time.Time{}
	if got, _ := f.config(nil); got.Certificates[0].Leaf != first {
		t.Fatal("a certificate cut short replaced the one before")
	}

	second := write("second")
	f.checked = time.Time{}
	got, _ := f.config(nil)
	if leaf := got.Certificates[0].Leaf; leaf == first || leaf.Issuer.CommonName != second.Cert.Subject.CommonName {
		t.Fatalf("after usable files: serving a certificate issued by %q; want one by %q", leaf.Issuer.CommonName, second.Cert.Subject.CommonName)
	}
}
