package kubeconfig

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"kplex.dev/cli/pki"
)

func TestBuildRejectsIncomplete(t *testing.T) {
	full := Config{Name: "x", Server: "https://127.0.0.1:1", CAPEM: []byte("ca"), CertPEM: []byte("c"), KeyPEM: []byte("k")}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "name is required"},
		{"no server", func(c *Config) { c.Server = "" }, "server is required"},
		{"no CA", func(c *Config) { c.CAPEM = nil }, "CA, client certificate and key"},
		{"no key", func(c *Config) { c.KeyPEM = nil }, "CA, client certificate and key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := full
			tt.mutate(&c)
			if _, err := Build(c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestWriteAndConnect writes a kubeconfig and uses it, through client-go,
// against a mutual-TLS server that echoes the client's CN.
func TestWriteAndConnect(t *testing.T) {
	ca, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.Issue(pki.CertSpec{CommonName: "server", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue(pki.CertSpec{CommonName: "alice", Organization: []string{"team"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.TLS.PeerCertificates[0].Subject.CommonName))
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{serving.Cert.Raw}, PrivateKey: serving.Key}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	srv.StartTLS()
	defer srv.Close()

	key, err := client.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sub", "kubeconfig")
	if err := Write(path, Config{Name: "test", Server: srv.URL, CAPEM: ca.CertPEM(), CertPEM: client.CertPEM(), KeyPEM: key}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig mode = %v (%v), want 0600", st.Mode().Perm(), err)
	}
	cfg, err := RESTConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(cfg.Host + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, _ := resp.Body.Read(buf)
	if got := string(buf[:n]); got != "alice" {
		t.Fatalf("server saw client %q, want alice", got)
	}
	// Overwrite in place: still one valid file.
	if err := Write(path, Config{Name: "test2", Server: srv.URL, CAPEM: ca.CertPEM(), CertPEM: client.CertPEM(), KeyPEM: key}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory has %d entries after rewrite, want 1 (temp files left?)", len(entries))
	}
}
