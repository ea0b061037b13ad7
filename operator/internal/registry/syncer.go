// Package registry writes what the shared components read about tenants:
// the syncer's tenant registrations (one file per tenant in the directory
// the shards reload) and the datastore-proxy's limits file. Both are
// plain files so the components need no access to the host API for them;
// writes are atomic (temporary file and rename) so a reader never sees
// half of one.
package registry

import (
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
	return filepath.Join(s.Dir, tenant+".yaml"), filepath.Join(s.Dir, tenant+".kubeconfig")
}

// hostPath is the tenant's private host cluster's kubeconfig.
func (s Syncer) hostPath(tenant string) string {
	return filepath.Join(s.Dir, tenant+".host.kubeconfig")
}

// Register writes the tenant's kubeconfig (the syncer's identity in the
// tenant API) and, for private nodes, its host cluster's kubeconfig (nil:
// the shared host), then its registration, unless all are already so. It
// reports whether anything was written.
func (s Syncer) Register(t SyncerTenant, kubeconfig, hostKubeconfig []byte) (bool, error) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return false, fmt.Errorf("syncer registry: %w", err)
	}
	y, k := s.paths(t.Name)
	t.Kubeconfig = filepath.Base(k) // relative: resolved against the directory
	type file struct {
		path string
		data []byte
		mode os.FileMode
	}
	files := []file{{k, kubeconfig, 0o600}}
	if hostKubeconfig != nil {
		t.HostKubeconfig = filepath.Base(s.hostPath(t.Name))
		files = append(files, file{s.hostPath(t.Name), hostKubeconfig, 0o600})
	}
	b, err := yaml.Marshal(apiregistry.File{Tenants: []SyncerTenant{t}})
	if err != nil {
		return false, err
	}
	// The registration last: a shard never reads one whose files are not
	// written yet.
	files = append(files, file{y, b, 0o644})
	wrote := false
	for _, f := range files {
		w, err := writeIfChanged(f.path, f.data, f.mode)
		if err != nil {
			return false, fmt.Errorf("syncer registry: %w", err)
		}
		wrote = wrote || w
	}
	return wrote, nil
}

// HostKubeconfig reads the private host cluster's kubeconfig last
// registered for the tenant.
func (s Syncer) HostKubeconfig(tenant string) ([]byte, error) {
	b, err := os.ReadFile(s.hostPath(tenant))
	if err != nil {
		return nil, fmt.Errorf("syncer registry: %w", err)
	}
	return b, nil
}

// RemoveHostKubeconfig removes the private host cluster's kubeconfig: it
// outlives Unregister (pause keeps it; deletion needs it to clean up the
// private cluster) and goes when the tenant does.
func (s Syncer) RemoveHostKubeconfig(tenant string) error {
	if err := os.Remove(s.hostPath(tenant)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("syncer registry: %w", err)
	}
	return nil
}

// Unregister removes the registration (the shards stop serving the tenant
// within a reload period), then the kubeconfig.
func (s Syncer) Unregister(tenant string) error {
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
