// Package registry writes what the shared components read about tenants:
// the syncer's tenant registrations (one file per tenant in the directory
// the shards reload) and the datastore-proxy's limits file. Both are
// plain files so the components need no access to the host API for them;
// writes are atomic (temporary file and rename) so a reader never sees
// half of one.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	apiregistry "kplex.dev/api/registry"
)

// SyncerTenant is one registration (the contract in api/registry).
type SyncerTenant = apiregistry.Tenant

// Syncer is the shards' registry directory.
type Syncer struct{ Dir string }

func (s Syncer) paths(tenant string) (yamlPath, kubeconfig string) {
	return filepath.Join(s.Dir, apiregistry.RegistrationFile(tenant)), filepath.Join(s.Dir, apiregistry.KubeconfigFile(tenant))
}

// hostPath is the tenant's private host cluster's kubeconfig.
func (s Syncer) hostPath(tenant string) string {
	return filepath.Join(s.Dir, apiregistry.HostKubeconfigFile(tenant))
}

// SyncerRegistry is where the operator registers tenants with the syncer
// shards: a directory (Syncer) or Secrets (SyncerSecrets).
type SyncerRegistry interface {
	// Register writes the tenant's registration with its kubeconfig (the
	// syncer's identity in the tenant API) and, for private nodes, its
	// host cluster's kubeconfig (nil: the shared host), unless all are
	// already so. It reports whether anything was written.
	Register(ctx context.Context, t SyncerTenant, kubeconfig, hostKubeconfig []byte) (bool, error)
	// Unregister removes the registration and the tenant kubeconfig (the
	// shards stop serving the tenant within a reload period); the host
	// kubeconfig stays.
	Unregister(ctx context.Context, tenant string) error
	// HostKubeconfig reads the private host cluster's kubeconfig last
	// registered; an error wrapping fs.ErrNotExist if there is none.
	HostKubeconfig(ctx context.Context, tenant string) ([]byte, error)
	// RemoveHostKubeconfig removes it: it outlives Unregister (pause
	// keeps it; deletion needs it to clean up the private cluster) and
	// goes when the tenant does.
	RemoveHostKubeconfig(ctx context.Context, tenant string) error
}

// regFile is one file of a registration.
type regFile struct {
	name string // base name
	data []byte
	mode os.FileMode
}

// registrationFiles are a tenant's registry files, the registration last:
// a shard never reads one whose kubeconfigs are not written yet.
func registrationFiles(t SyncerTenant, kubeconfig, hostKubeconfig []byte) ([]regFile, error) {
	t.Kubeconfig = apiregistry.KubeconfigFile(t.Name) // relative: resolved against the directory
	files := []regFile{{t.Kubeconfig, kubeconfig, 0o600}}
	if hostKubeconfig != nil {
		t.HostKubeconfig = apiregistry.HostKubeconfigFile(t.Name)
		files = append(files, regFile{t.HostKubeconfig, hostKubeconfig, 0o600})
	}
	b, err := yaml.Marshal(apiregistry.File{Tenants: []SyncerTenant{t}})
	if err != nil {
		return nil, err
	}
	return append(files, regFile{apiregistry.RegistrationFile(t.Name), b, 0o644}), nil
}

// Register implements SyncerRegistry.
func (s Syncer) Register(_ context.Context, t SyncerTenant, kubeconfig, hostKubeconfig []byte) (bool, error) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return false, fmt.Errorf("syncer registry: %w", err)
	}
	files, err := registrationFiles(t, kubeconfig, hostKubeconfig)
	if err != nil {
		return false, err
	}
	wrote := false
	for _, f := range files {
		w, err := writeIfChanged(filepath.Join(s.Dir, f.name), f.data, f.mode)
		if err != nil {
			return false, fmt.Errorf("syncer registry: %w", err)
		}
		wrote = wrote || w
	}
	return wrote, nil
}

// HostKubeconfig implements SyncerRegistry.
func (s Syncer) HostKubeconfig(_ context.Context, tenant string) ([]byte, error) {
	b, err := os.ReadFile(s.hostPath(tenant))
	if err != nil {
		return nil, fmt.Errorf("syncer registry: %w", err)
	}
	return b, nil
}

// RemoveHostKubeconfig implements SyncerRegistry.
func (s Syncer) RemoveHostKubeconfig(_ context.Context, tenant string) error {
	if err := os.Remove(s.hostPath(tenant)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("syncer registry: %w", err)
	}
	return nil
}

// Unregister implements SyncerRegistry: the registration first, then the
// kubeconfig.
func (s Syncer) Unregister(_ context.Context, tenant string) error {
	y, k := s.paths(tenant)
	for _, p := range []string{y, k} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("syncer registry: %w", err)
		}
	}
	return nil
}

func writeIfChanged(path string, data []byte, mode os.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return false, nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, path)
}
