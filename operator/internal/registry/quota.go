package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Limits are one tenant's datastore quotas, in the datastore-proxy's
// limits file format (datastore-proxy/tenantconfig); 0 = the default.
type Limits struct {
	MaxKeys           int64   `json:"maxKeys,omitempty"`
	MaxBytes          int64   `json:"maxBytes,omitempty"`
	RequestsPerSecond float64 `json:"requestsPerSecond,omitempty"`
	Burst             int     `json:"burst,omitempty"`
	MaxWatches        int64   `json:"maxWatches,omitempty"`
}

// Quotas is the datastore-proxy's limits file. The operator owns it: the
// defaults come from the operator's flags, the tenants from their
// VirtualClusters; the proxy reloads it when it changes. It is a file
// (Path), or the key LimitsKey of a host ConfigMap (ConfigMap, through
// Client) that a proxy in the cluster mounts as its file.
type Quotas struct {
	Path      string
	ConfigMap client.ObjectKey
	Client    client.Client
	Defaults  Limits

	mu      sync.Mutex
	tenants map[string]Limits
	loaded  bool
	// unsaved: the last write failed, so the next call writes even if
	// nothing changed since.
	unsaved bool
}

// Set records a tenant's limits and rewrites the file if they changed.
func (q *Quotas) Set(ctx context.Context, tenant string, l Limits) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.load(ctx); err != nil {
		return err
	}
	if old, ok := q.tenants[tenant]; ok && old == l && !q.unsaved {
		return nil
	}
	q.tenants[tenant] = l
	return q.write(ctx)
}

// Delete forgets a tenant.
func (q *Quotas) Delete(ctx context.Context, tenant string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.load(ctx); err != nil {
		return err
	}
	if _, ok := q.tenants[tenant]; !ok && !q.unsaved {
		return nil
	}
	delete(q.tenants, tenant)
	return q.write(ctx)
}

type quotaFile struct {
	Defaults Limits            `json:"defaults"`
	Tenants  map[string]Limits `json:"tenants"`
}

// LimitsKey is the ConfigMap key holding the limits file.
const LimitsKey = "limits.yaml"

// load reads the file once, so tenants set by an earlier operator run are
// kept until their VirtualCluster is reconciled again.
func (q *Quotas) load(ctx context.Context) error {
	if q.loaded {
		return nil
	}
	q.tenants = map[string]Limits{}
	b, err := q.read(ctx)
	if err == nil {
		var f quotaFile
		if err := yaml.UnmarshalStrict(b, &f); err != nil {
			return fmt.Errorf("datastore limits %s: %w", q.where(), err)
		}
		for k, v := range f.Tenants {
			q.tenants[k] = v
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("datastore limits: %w", err)
	}
	q.loaded = true
	return q.write(ctx) // the defaults may have changed
}

func (q *Quotas) where() string {
	if q.ConfigMap.Name != "" {
		return "ConfigMap " + q.ConfigMap.String()
	}
	return "file " + q.Path
}

// read returns the stored limits file; an error wrapping fs.ErrNotExist
// if there is none yet.
func (q *Quotas) read(ctx context.Context) ([]byte, error) {
	if q.ConfigMap.Name == "" {
		return os.ReadFile(q.Path)
	}
	var cm corev1.ConfigMap
	if err := q.Client.Get(ctx, q.ConfigMap, &cm); apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("ConfigMap %s: %w", q.ConfigMap, fs.ErrNotExist)
	} else if err != nil {
		return nil, err
	}
	s, ok := cm.Data[LimitsKey]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s has no %s: %w", q.ConfigMap, LimitsKey, fs.ErrNotExist)
	}
	return []byte(s), nil
}

// write stores the limits; a failure leaves them unsaved, to be written by
// the next call.
func (q *Quotas) write(ctx context.Context) error {
	q.unsaved = true
	b, err := yaml.Marshal(quotaFile{Defaults: q.Defaults, Tenants: q.tenants})
	if err != nil {
		return err
	}
	if err := q.store(ctx, b); err != nil {
		return err
	}
	q.unsaved = false
	return nil
}

func (q *Quotas) store(ctx context.Context, b []byte) error {
	if q.ConfigMap.Name != "" {
		return q.writeConfigMap(ctx, string(b))
	}
	if err := os.MkdirAll(filepath.Dir(q.Path), 0o755); err != nil {
		return fmt.Errorf("datastore limits file: %w", err)
	}
	if _, err := writeIfChanged(q.Path, b, 0o644); err != nil {
		return fmt.Errorf("datastore limits file: %w", err)
	}
	return nil
}

func (q *Quotas) writeConfigMap(ctx context.Context, limits string) error {
	var cm corev1.ConfigMap
	err := q.Client.Get(ctx, q.ConfigMap, &cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: q.ConfigMap.Name, Namespace: q.ConfigMap.Namespace},
			Data: map[string]string{LimitsKey: limits}}
		err = q.Client.Create(ctx, &cm)
	case err == nil && cm.Data[LimitsKey] == limits:
		return nil
	case err == nil:
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[LimitsKey] = limits
		err = q.Client.Update(ctx, &cm) // on a conflict, the next Set or Delete writes again
	}
	if err != nil {
		return fmt.Errorf("datastore limits ConfigMap %s: %w", q.ConfigMap, err)
	}
	return nil
}
