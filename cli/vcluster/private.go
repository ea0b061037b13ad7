package vcluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kplex.dev/api/registry"
	"kplex.dev/api/v1alpha1"
)

// PrivateNodesSecret is the Secret `create --private-nodes` makes for a
// VirtualCluster: the other cluster's kubeconfig under KubeconfigKey.
func PrivateNodesSecret(vc string) string { return vc + "-private-nodes" }

// PrivateKubeconfig reads a kubeconfig file for a private-nodes Secret: its
// current context only, with every file it refers to (certificates, keys)
// inlined, since the operator and the shards cannot read this machine's
// files. Credentials that are not data (exec and auth-provider plugins,
// token files) are refused, as the operator would refuse them.
func PrivateKubeconfig(path string) ([]byte, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("--private-nodes %s: %w", path, err)
	}
	if err := clientcmdapi.MinifyConfig(cfg); err != nil {
		return nil, fmt.Errorf("--private-nodes %s: %w", path, err)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, fmt.Errorf("--private-nodes %s: %w", path, err)
	}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, err
	}
	if err := registry.CheckHostKubeconfig(b); err != nil {
		return nil, fmt.Errorf("--private-nodes %s: %w", path, err)
	}
	if _, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig(); err != nil {
		return nil, fmt.Errorf("--private-nodes %s: not a usable kubeconfig: %w", path, err)
	}
	return b, nil
}

// PutPrivateNodesSecret creates (or updates) the private-nodes Secret of
// a VirtualCluster about to be created.
func (c *Client) PutPrivateNodesSecret(ctx context.Context, vc string, kubeconfig []byte) error {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: PrivateNodesSecret(vc), Namespace: c.Namespace},
		Data: map[string][]byte{KubeconfigKey: kubeconfig}}
	err := c.Client.Create(ctx, s)
	if apierrors.IsAlreadyExists(err) {
		var cur corev1.Secret
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(s), &cur); err != nil {
			return fmt.Errorf("secret %s: %w", s.Name, err)
		}
		cur.Data = s.Data
		err = c.Client.Update(ctx, &cur)
	}
	if err != nil {
		return fmt.Errorf("secret %s/%s: %w", c.Namespace, s.Name, err)
	}
	return nil
}

// DeletePrivateNodesSecret removes the private-nodes Secret of a
// VirtualCluster that could not be created; best effort.
func (c *Client) DeletePrivateNodesSecret(ctx context.Context, vc string) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: PrivateNodesSecret(vc), Namespace: c.Namespace}}
	_ = c.Client.Delete(ctx, s)
}

// OwnPrivateNodesSecret makes the VirtualCluster own its private-nodes
// Secret, so the host's garbage collector removes it with it.
func (c *Client) OwnPrivateNodesSecret(ctx context.Context, vc *v1alpha1.VirtualCluster) error {
	var s corev1.Secret
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: PrivateNodesSecret(vc.Name)}, &s); err != nil {
		return fmt.Errorf("secret %s: %w", PrivateNodesSecret(vc.Name), err)
	}
	s.OwnerReferences = append(s.OwnerReferences, metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "VirtualCluster", Name: vc.Name, UID: vc.UID})
	if err := c.Client.Update(ctx, &s); err != nil {
		return fmt.Errorf("secret %s: %w", s.Name, err)
	}
	return nil
}
