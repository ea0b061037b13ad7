// Package tenantsecrets mirrors the tenant registrations kplex-operator
// keeps in host Secrets (its --syncer-registry-namespace; the contract is
// in api/registry) into a local directory, which the shard then loads like
// the operator's registry directory. It is the registry of a platform
// running in a cluster, where operator and shards share no filesystem:
// one watch per shard, on the labeled Secrets of one namespace.
package tenantsecrets

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"kplex.dev/api/registry"
	"kplex.dev/syncer/internal/tenants"
)

// Mirror writes the registrations of Namespace into Dir.
type Mirror struct {
	Client    kubernetes.Interface
	Namespace string
	Dir       string
	Log       *slog.Logger

	store   cache.Store
	changed chan struct{}
}

// Start begins watching and returns once Dir holds every registration
// there is; it then follows changes until ctx ends.
func (m *Mirror) Start(ctx context.Context) error {
	if err := os.MkdirAll(m.Dir, 0o700); err != nil {
		return fmt.Errorf("registration mirror: %w", err)
	}
	f := informers.NewSharedInformerFactoryWithOptions(m.Client, 0, informers.WithNamespace(m.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = registry.SecretLabel }))
	inf := f.Core().V1().Secrets().Informer()
	m.store, m.changed = inf.GetStore(), make(chan struct{}, 1)
	poke := func(any) {
		select {
		case m.changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke,
	}); err != nil {
		return fmt.Errorf("registration mirror: %w", err)
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		f.Shutdown()
		return fmt.Errorf("registration mirror: Secrets of namespace %s did not sync: %w", m.Namespace, ctx.Err())
	}
	if err := m.write(); err != nil {
		f.Shutdown()
		return err
	}
	go func() {
		defer f.Shutdown()
		retry := time.NewTicker(10 * time.Second)
		defer retry.Stop()
		failed := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-m.changed:
			case <-retry.C:
				if !failed {
					continue
				}
			}
			err := m.write()
			if err != nil && !failed {
				m.Log.Error("cannot mirror tenant registrations; retrying every 10s", "err", err)
			}
			failed = err != nil
		}
	}()
	return nil
}

// Files are the files a registration Secret may hold: the tenant's
// registration and kubeconfigs, named after the tenant of its label (a
// tenant name: no dots, so no two tenants' files collide), and a
// registration of that tenant alone, naming exactly those kubeconfigs: one
// Secret cannot register or overwrite another tenant.
func Files(s *corev1.Secret) (map[string][]byte, error) {
	tenant := s.Labels[registry.SecretLabel]
	if !tenantName.MatchString(tenant) || s.Name != registry.SecretPrefix+tenant {
		return nil, fmt.Errorf("secret %s/%s: not the registration Secret of tenant %q", s.Namespace, s.Name, tenant)
	}
	out := map[string][]byte{}
	for k, v := range s.Data {
		switch k {
		case registry.RegistrationFile(tenant), registry.KubeconfigFile(tenant), registry.HostKubeconfigFile(tenant):
			out[k] = v
		default:
			return nil, fmt.Errorf("secret %s/%s: unexpected key %q", s.Namespace, s.Name, k)
		}
	}
	if reg, ok := out[registry.RegistrationFile(tenant)]; ok {
		c, err := tenants.Parse(reg, "")
		if err != nil {
			return nil, fmt.Errorf("secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		if len(c.Tenants) != 1 || c.Tenants[0].Name != tenant || c.Tenants[0].Kubeconfig != registry.KubeconfigFile(tenant) ||
			(c.Tenants[0].HostKubeconfig != "" && c.Tenants[0].HostKubeconfig != registry.HostKubeconfigFile(tenant)) {
			return nil, fmt.Errorf("secret %s/%s: the registration must be tenant %s's alone, naming %s (and %s)", s.Namespace, s.Name, tenant, registry.KubeconfigFile(tenant), registry.HostKubeconfigFile(tenant))
		}
	}
	return out, nil
}

// tenantName is a tenant name (tenants.Parse checks the same).
var tenantName = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$`)

// write makes Dir hold exactly the registrations' files: kubeconfigs
// before registrations (each file replaced atomically), so the shard
// never loads a registration whose kubeconfig is missing.
func (m *Mirror) write() error {
	want := map[string][]byte{}
	for _, o := range m.store.List() {
		s, ok := o.(*corev1.Secret)
		if !ok {
			continue
		}
		files, err := Files(s)
		if err != nil {
			m.Log.Warn("ignoring a registration Secret", "err", err)
			continue
		}
		for k, v := range files {
			want[k] = v
		}
	}
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { // registrations last
		yi, yj := strings.HasSuffix(names[i], ".yaml"), strings.HasSuffix(names[j], ".yaml")
		return yi != yj && yj || yi == yj && names[i] < names[j]
	})
	for _, n := range names {
		if err := writeIfChanged(filepath.Join(m.Dir, n), want[n]); err != nil {
			return fmt.Errorf("registration mirror: %w", err)
		}
	}
	// Registrations gone first, then their kubeconfigs.
	have, err := os.ReadDir(m.Dir)
	if err != nil {
		return fmt.Errorf("registration mirror: %w", err)
	}
	sort.Slice(have, func(i, j int) bool {
		return strings.HasSuffix(have[i].Name(), ".yaml") && !strings.HasSuffix(have[j].Name(), ".yaml")
	})
	for _, e := range have {
		if _, ok := want[e.Name()]; !ok {
			if err := os.Remove(filepath.Join(m.Dir, e.Name())); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("registration mirror: %w", err)
			}
		}
	}
	return nil
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
