package registry

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiregistry "kplex.dev/api/registry"
)

// SyncerSecrets keeps registrations in host Secrets, one per tenant in
// Namespace (apiregistry.SecretPrefix + tenant, labeled
// apiregistry.SecretLabel), each holding the files Syncer would write as
// keys: the registry for a platform running in a cluster, where operator
// and shards share no filesystem. The shards mirror them
// (kplex-syncer --tenants-secrets-namespace).
type SyncerSecrets struct {
	Client    client.Client // uncached for Secrets
	Namespace string
}

func (s SyncerSecrets) key(tenant string) client.ObjectKey {
	return client.ObjectKey{Namespace: s.Namespace, Name: apiregistry.SecretPrefix + tenant}
}

// get returns the tenant's Secret, or nil.
func (s SyncerSecrets) get(ctx context.Context, tenant string) (*corev1.Secret, error) {
	var sec corev1.Secret
	err := s.Client.Get(ctx, s.key(tenant), &sec)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("syncer registry secret: %w", err)
	}
	return &sec, nil
}

// Register implements SyncerRegistry. One Secret update carries every
// file, so a shard never sees a registration without its kubeconfigs.
func (s SyncerSecrets) Register(ctx context.Context, t SyncerTenant, kubeconfig, hostKubeconfig []byte) (bool, error) {
	files, err := registrationFiles(t, kubeconfig, hostKubeconfig)
	if err != nil {
		return false, err
	}
	data := map[string][]byte{}
	for _, f := range files {
		data[f.name] = f.data
	}
	sec, err := s.get(ctx, t.Name)
	if err != nil {
		return false, err
	}
	if sec == nil {
		k := s.key(t.Name)
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: k.Name, Namespace: k.Namespace,
			Labels: map[string]string{apiregistry.SecretLabel: t.Name}}, Data: data}
		if err := s.Client.Create(ctx, sec); err != nil {
			return false, fmt.Errorf("syncer registry secret: %w", err)
		}
		return true, nil
	}
	if maps.EqualFunc(sec.Data, data, bytes.Equal) {
		return false, nil
	}
	sec.Data = data
	if err := s.Client.Update(ctx, sec); err != nil {
		return false, fmt.Errorf("syncer registry secret: %w", err)
	}
	return true, nil
}

// Unregister implements SyncerRegistry: the Secret keeps only the host
// kubeconfig, or goes if there is none.
func (s SyncerSecrets) Unregister(ctx context.Context, tenant string) error {
	sec, err := s.get(ctx, tenant)
	if err != nil || sec == nil {
		return err
	}
	host, ok := sec.Data[apiregistry.HostKubeconfigFile(tenant)]
	if !ok {
		return s.delete(ctx, sec)
	}
	if len(sec.Data) == 1 {
		return nil
	}
	sec.Data = map[string][]byte{apiregistry.HostKubeconfigFile(tenant): host}
	if err := s.Client.Update(ctx, sec); err != nil {
		return fmt.Errorf("syncer registry secret: %w", err)
	}
	return nil
}

// HostKubeconfig implements SyncerRegistry.
func (s SyncerSecrets) HostKubeconfig(ctx context.Context, tenant string) ([]byte, error) {
	sec, err := s.get(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if sec != nil {
		if b, ok := sec.Data[apiregistry.HostKubeconfigFile(tenant)]; ok {
			return b, nil
		}
	}
	return nil, fmt.Errorf("syncer registry secret %s: no host kubeconfig: %w", s.key(tenant), fs.ErrNotExist)
}

// RemoveHostKubeconfig implements SyncerRegistry: the Secret goes.
func (s SyncerSecrets) RemoveHostKubeconfig(ctx context.Context, tenant string) error {
	sec, err := s.get(ctx, tenant)
	if err != nil || sec == nil {
		return err
	}
	return s.delete(ctx, sec)
}

func (s SyncerSecrets) delete(ctx context.Context, sec *corev1.Secret) error {
	err := s.Client.Delete(ctx, sec, client.Preconditions{UID: ptr.To(sec.UID)})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("syncer registry secret: %w", err)
	}
	return nil
}
