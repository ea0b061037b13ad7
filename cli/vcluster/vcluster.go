// Package vcluster is kplexctl's client of VirtualCluster objects on the
// host: create, get, list, patch, delete, wait with progress, and the
// admin kubeconfig the operator publishes.
package vcluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kplex.dev/api/v1alpha1"
)

// KubeconfigKey is the admin kubeconfig's key in the Secret the operator
// names in status.adminKubeconfigSecret.
const KubeconfigKey = "kubeconfig"

// Client reaches VirtualClusters on a host cluster.
type Client struct {
	client.Client
	Namespace  string
	kubeconfig string
	cfg        *rest.Config
}

func (c *Client) noCRD() error {
	return fmt.Errorf("the host cluster of %s has no VirtualCluster resource: kplex-operator is not installed or not running there (a virtual cluster's kubeconfig? pass the host's with --kubeconfig)", c.kubeconfig)
}

// HostKubeconfig picks the host kubeconfig: the flag, else the local
// environment's (<dir>/host/kubeconfig) when there is one, else
// $KUBECONFIG. The local one goes before $KUBECONFIG because a local user's
// KUBECONFIG often points at a virtual cluster.
func HostKubeconfig(flag, dir string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	local := filepath.Join(dir, "host", "kubeconfig")
	if _, err := os.Stat(local); err == nil {
		return local, nil
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		return env, nil
	}
	return "", fmt.Errorf("no host cluster: pass --kubeconfig, set KUBECONFIG, or start the local environment with `kplexctl up` (looked for %s)", local)
}

// New connects to the host.
func New(kubeconfig, namespace string) (*Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("host kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.Timeout = 30 * time.Second
	cfg.QPS, cfg.Burst = 50, 100 // --wait polls; many at once must not queue client-side
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("host cluster: %w", err)
	}
	return &Client{Client: c, Namespace: namespace, kubeconfig: kubeconfig, cfg: cfg}, nil
}

// Get returns one VirtualCluster, with an error that says what to do when
// it does not exist.
func (c *Client) Get(ctx context.Context, name string) (*v1alpha1.VirtualCluster, error) {
	var vc v1alpha1.VirtualCluster
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, &vc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("virtual cluster %q not found in namespace %s (`kplexctl list -A` shows every namespace)", name, c.Namespace)
		}
		if apimeta.IsNoMatchError(err) {
			return nil, c.noCRD()
		}
		return nil, err
	}
	return &vc, nil
}

// List returns the VirtualClusters of the namespace (all when all).
func (c *Client) List(ctx context.Context, all bool) ([]v1alpha1.VirtualCluster, error) {
	var l v1alpha1.VirtualClusterList
	var opts []client.ListOption
	if !all {
		opts = append(opts, client.InNamespace(c.Namespace))
	}
	if err := c.Client.List(ctx, &l, opts...); err != nil {
		if apimeta.IsNoMatchError(err) {
			return nil, c.noCRD()
		}
		return nil, err
	}
	sort.Slice(l.Items, func(i, j int) bool {
		if l.Items[i].Namespace != l.Items[j].Namespace {
			return l.Items[i].Namespace < l.Items[j].Namespace
		}
		return l.Items[i].Name < l.Items[j].Name
	})
	return l.Items, nil
}

// SetPaused pauses or resumes.
func (c *Client) SetPaused(ctx context.Context, name string, paused bool) error {
	vc, err := c.Get(ctx, name)
	if err != nil {
		return err
	}
	patch := fmt.Sprintf(`{"spec":{"paused":%t}}`, paused)
	return c.Patch(ctx, vc, client.RawPatch(types.MergePatchType, []byte(patch)))
}

// Kubeconfig returns the tenant's admin kubeconfig.
func (c *Client) Kubeconfig(ctx context.Context, name string) ([]byte, error) {
	vc, err := c.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if vc.Status.AdminKubeconfigSecret == "" {
		return nil, fmt.Errorf("virtual cluster %s has no kubeconfig yet (phase %s): wait with `kplexctl create %s --wait` or check `kplexctl describe %s`",
			name, phaseOf(vc), name, name)
	}
	var s corev1.Secret
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: vc.Status.AdminKubeconfigSecret}, &s); err != nil {
		return nil, fmt.Errorf("kubeconfig secret %s/%s: %w", c.Namespace, vc.Status.AdminKubeconfigSecret, err)
	}
	kc := s.Data[KubeconfigKey]
	if len(kc) == 0 {
		return nil, fmt.Errorf("kubeconfig secret %s/%s has no %q key", c.Namespace, s.Name, KubeconfigKey)
	}
	return kc, nil
}

// Events are the host's events about a VirtualCluster, oldest first.
func (c *Client) Events(ctx context.Context, vc *v1alpha1.VirtualCluster) ([]corev1.Event, error) {
	var l corev1.EventList
	if err := c.Client.List(ctx, &l, client.InNamespace(vc.Namespace)); err != nil {
		return nil, err
	}
	var out []corev1.Event
	for _, e := range l.Items {
		if e.InvolvedObject.Kind == "VirtualCluster" && e.InvolvedObject.Name == vc.Name && e.InvolvedObject.UID == vc.UID {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return eventTime(out[i]).Before(eventTime(out[j])) })
	return out, nil
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func phaseOf(vc *v1alpha1.VirtualCluster) string {
	if vc.Status.Phase == "" {
		return "Pending"
	}
	return string(vc.Status.Phase)
}

// WaitReady waits until the VirtualCluster is Ready, printing a line each
// time its phase or a condition changes. A Failed phase ends the wait with
// the reason.
func (c *Client) WaitReady(ctx context.Context, name string, out io.Writer) (*v1alpha1.VirtualCluster, error) {
	seen := map[string]string{}
	start := time.Now()
	for {
		vc, err := c.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		report := func(key, line string) {
			if seen[key] != line {
				seen[key] = line
				fmt.Fprintf(out, "  %5.1fs  %s\n", time.Since(start).Seconds(), line)
			}
		}
		report("phase", "phase "+phaseOf(vc))
		for _, cond := range vc.Status.Conditions {
			line := fmt.Sprintf("%s=%s", cond.Type, cond.Status)
			if cond.Status != metav1.ConditionTrue {
				line += " (" + cond.Reason + ": " + FirstLine(cond.Message) + ")"
			}
			report(cond.Type, line)
		}
		ready := apimeta.IsStatusConditionTrue(vc.Status.Conditions, v1alpha1.ConditionReady)
		if ready && vc.Status.ObservedGeneration >= vc.Generation {
			return vc, nil
		}
		if vc.Status.Phase == v1alpha1.PhaseFailed {
			c := apimeta.FindStatusCondition(vc.Status.Conditions, v1alpha1.ConditionReady)
			msg := "see `kplexctl describe " + name + "`"
			if c != nil {
				msg = c.Reason + ": " + c.Message
			}
			return vc, fmt.Errorf("virtual cluster %s failed: %s", name, msg)
		}
		select {
		case <-ctx.Done():
			return vc, fmt.Errorf("virtual cluster %s is not Ready after %s (phase %s); `kplexctl describe %s` shows why", name, time.Since(start).Round(time.Second), phaseOf(vc), name)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// WaitGone waits until the VirtualCluster no longer exists.
func (c *Client) WaitGone(ctx context.Context, name string, out io.Writer) error {
	start := time.Now()
	last := ""
	for {
		var vc v1alpha1.VirtualCluster
		err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, &vc)
		if apierrors.IsNotFound(err) {
			fmt.Fprintf(out, "  %5.1fs  deleted\n", time.Since(start).Seconds())
			return nil
		}
		if err != nil {
			return err
		}
		line := "phase " + phaseOf(&vc)
		if line != last {
			fmt.Fprintf(out, "  %5.1fs  %s\n", time.Since(start).Seconds(), line)
			last = line
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("virtual cluster %s still exists after %s (finalizers %v); is kplex-operator running?", name, time.Since(start).Round(time.Second), vc.Finalizers)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// FirstLine is s up to its first newline.
func FirstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
