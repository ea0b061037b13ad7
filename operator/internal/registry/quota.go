package registry

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"sigs.k8s.io/yaml"
)

// Limits are one tenant's datastore quotas, in the datastore-proxy's
// limits file format (datastore-proxy/tenantconfig); 0 = the default.
type Limits struct {
	MaxKeys           int64   `json:"maxKeys,omitempty"`
	MaxBytes          int64   `json:"maxBytes,omitempty"`
	RequestsPerSecond float64 `json:"requestsPerSecond,omitempty"`
	Burst             int     `json:"burst,omitempty"`
}

// Quotas is the datastore-proxy's limits file. The operator owns it: the
// defaults come from the operator's flags, the tenants from their
// VirtualClusters; the proxy reloads it when it changes.
type Quotas struct {
	Path     string
	Defaults Limits

	mu      sync.Mutex
	tenants map[string]Limits
	loaded  bool
}

// Set records a tenant's limits and rewrites the file if they changed.
func (q *Quotas) Set(tenant string, l Limits) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.load(); err != nil {
		return err
	}
	if old, ok := q.tenants[tenant]; ok && old == l {
		return nil
	}
	q.tenants[tenant] = l
	return q.write()
}

// Delete forgets a tenant.
func (q *Quotas) Delete(tenant string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.load(); err != nil {
		return err
	}
	if _, ok := q.tenants[tenant]; !ok {
		return nil
	}
	delete(q.tenants, tenant)
	return q.write()
}

type quotaFile struct {
	Defaults Limits            `json:"defaults"`
	Tenants  map[string]Limits `json:"tenants"`
}

// load reads the file once, so tenants set by an earlier operator run are
// kept until their VirtualCluster is reconciled again.
func (q *Quotas) load() error {
	if q.loaded {
		return nil
	}
	q.tenants = map[string]Limits{}
	b, err := os.ReadFile(q.Path)
	if err == nil {
		var f quotaFile
		if err := yaml.UnmarshalStrict(b, &f); err != nil {
			return fmt.Errorf("datastore limits file %s: %w", q.Path, err)
		}
		for k, v := range f.Tenants {
			q.tenants[k] = v
		}
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("datastore limits file: %w", err)
	}
	q.loaded = true
	return q.write() // the defaults may have changed
}

func (q *Quotas) write() error {
	b, err := yaml.Marshal(quotaFile{Defaults: q.Defaults, Tenants: q.tenants})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(q.Path), 0o755); err != nil {
		return fmt.Errorf("datastore limits file: %w", err)
	}
	if _, err := writeIfChanged(q.Path, b, 0o644); err != nil {
		return fmt.Errorf("datastore limits file: %w", err)
	}
	return nil
}
