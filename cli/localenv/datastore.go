package localenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"kplex.dev/cli/pki"
)

// Datastore certificates under host/pki. The datastore CA signs only
// tenants' datastore client certificates (CN = tenant), so no other host
// identity can act as a tenant at the proxy.
const (
	datastoreCA    = "datastore-ca"
	certDatastoreS = "datastore-proxy"
)

// datastoreComponent is the shared datastore-proxy with its embedded
// SQLite database: every virtual cluster stores its state through it.
func (e *env) datastoreComponent() component {
	dir := e.layout.HostPKI()
	metrics := "http://127.0.0.1:" + e.port(PortDatastoreMetrics)
	return component{
		name:    "datastore-proxy",
		ports:   []string{PortDatastore, PortDatastoreMetrics},
		prepare: func(context.Context) error { return e.prepareDatastore() },
		command: func() (string, []string, []string, error) {
			return e.bin("kplex-datastore-proxy"), []string{
				"--listen-address=127.0.0.1:" + e.port(PortDatastore),
				"--metrics-address=127.0.0.1:" + e.port(PortDatastoreMetrics),
				"--tls-cert-file=" + pkiFile(dir, certDatastoreS, "crt"),
				"--tls-key-file=" + pkiFile(dir, certDatastoreS, "key"),
				"--client-ca-file=" + pkiFile(dir, datastoreCA, "crt"),
				"--backend=sqlite",
				"--data-dir=" + e.layout.DatastoreDir(),
				"--tenant-config=" + e.layout.DatastoreLimits(), // written by the operator
			}, nil, nil
		},
		ready:        httpProbe(func() (*http.Client, error) { return &http.Client{Timeout: 3 * time.Second}, nil }, metrics+"/readyz", "ok"),
		readyTimeout: 60 * time.Second,
	}
}

// prepareDatastore writes the datastore PKI and, the first time, an empty
// limits file (the operator owns it from then on).
func (e *env) prepareDatastore() error {
	if err := e.prepareDatastorePKI(); err != nil {
		return err
	}
	path := e.layout.DatastoreLimits()
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("datastore limits file: %w", err)
	}
	if err := os.WriteFile(path, []byte("defaults: {}\ntenants: {}\n"), 0o644); err != nil {
		return fmt.Errorf("datastore limits file: %w", err)
	}
	return nil
}

func (e *env) prepareDatastorePKI() error {
	dir := e.layout.HostPKI()
	if _, err := pki.LoadOrCreateCA(dir, datastoreCA, "kplex-datastore-ca"); err != nil {
		return fmt.Errorf("datastore CA: %w", err)
	}
	ca, err := pki.LoadCA(dir, hostCA)
	if err != nil {
		return fmt.Errorf("host CA: %w", err)
	}
	if _, _, err := ca.EnsureKeyPair(dir, certDatastoreS, loopbackServer("kplex-datastore-proxy")); err != nil {
		return fmt.Errorf("datastore-proxy serving certificate: %w", err)
	}
	return nil
}
