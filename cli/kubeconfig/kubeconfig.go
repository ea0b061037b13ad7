// Package kubeconfig writes the self-contained kubeconfig files of a local
// environment (certificates embedded, so a file can be copied anywhere).
package kubeconfig

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Config is one cluster, one user, one context.
type Config struct {
	Name    string // cluster, user and context name
	Server  string // https://host:port
	CAPEM   []byte
	CertPEM []byte // client certificate
	KeyPEM  []byte
}

// Build returns the kubeconfig as an API object.
func Build(c Config) (*clientcmdapi.Config, error) {
	switch {
	case c.Name == "":
		return nil, fmt.Errorf("kubeconfig: name is required")
	case c.Server == "":
		return nil, fmt.Errorf("kubeconfig %s: server is required", c.Name)
	case len(c.CAPEM) == 0 || len(c.CertPEM) == 0 || len(c.KeyPEM) == 0:
		return nil, fmt.Errorf("kubeconfig %s: CA, client certificate and key are required", c.Name)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: c.CAPEM}
	cfg.AuthInfos[c.Name] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertPEM, ClientKeyData: c.KeyPEM}
	cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name}
	cfg.CurrentContext = c.Name
	return cfg, nil
}

// Encode returns the kubeconfig as YAML.
func Encode(c Config) ([]byte, error) {
	cfg, err := Build(c)
	if err != nil {
		return nil, err
	}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("encode kubeconfig %s: %w", c.Name, err)
	}
	return b, nil
}

// Write writes the kubeconfig to path (mode 0600, atomically: a reader
// never sees half a file).
func Write(path string, c Config) error {
	b, err := Encode(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create kubeconfig dir: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kubeconfig-*")
	if err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// RESTConfig loads a kubeconfig file as a client config.
func RESTConfig(path string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}
