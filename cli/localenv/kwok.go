package localenv

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/cli/kubeconfig"
)

//go:embed kwok/stages.yaml
var kwokStages []byte

const (
	// LabelNodeKind marks nodes made by a node provider.
	LabelNodeKind  = "node.kplex.dev/kind"
	kwokAnnotation = "kwok.x-k8s.io/node"
)

// kwokNodes are simulated nodes: Node objects that one kwok process keeps
// Ready and whose bound pods it moves through the stages in kwok/stages.yaml.
type kwokNodes struct{ e *env }

func (k *kwokNodes) nodeNames() []string {
	names := make([]string, k.e.state.Nodes)
	for i := range names {
		names[i] = fmt.Sprintf("kwok-node-%d", i)
	}
	return names
}

func (k *kwokNodes) components() []component {
	e := k.e
	stages := filepath.Join(e.layout.KWOKDir(), "stages.yaml")
	return []component{{
		name:  "kwok",
		ports: []string{PortKWOK},
		prepare: func(ctx context.Context) error {
			if err := os.MkdirAll(e.layout.KWOKDir(), 0o755); err != nil {
				return fmt.Errorf("kwok dir: %w", err)
			}
			if err := os.WriteFile(stages, append(kwokStages, portForwardConfig(e.opts.PortForwards)...), 0o644); err != nil {
				return fmt.Errorf("write kwok stages: %w", err)
			}
			return k.ensureNodes(ctx)
		},
		command: func() (string, []string, []string, error) {
			return e.bin("kwok"), []string{
				"--kubeconfig=" + e.layout.HostComponentKubeconfig("kwok"),
				"--config=" + stages,
				"--manage-all-nodes=false",
				"--manage-nodes-with-annotation-selector=" + kwokAnnotation + "=fake",
				"--node-ip=127.0.0.1",
				"--node-lease-duration-seconds=40",
				"--server-address=127.0.0.1:" + e.port(PortKWOK),
				// The nodes' kubelet endpoint: the host API server reaches
				// KWOK there for logs, exec and port-forward.
				"--node-port=" + e.port(PortKWOK),
			}, nil, nil
		},
		ready:        k.nodesReady,
		readyTimeout: 60 * time.Second,
		// KWOK v0.8.0 can die at start with "concurrent map writes": its
		// controllers build CEL environments in parallel, and easycel
		// (types.go) caches types in a plain map. Seen about once in ten
		// runs; a second start is fine.
		startRetries: 2,
	}}
}

func (k *kwokNodes) client() (kubernetes.Interface, error) {
	cfg, err := kubeconfig.RESTConfig(k.e.layout.HostKubeconfig())
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// ensureNodes registers the Node objects (kwok simulates, it does not
// register).
func (k *kwokNodes) ensureNodes(ctx context.Context) error {
	c, err := k.client()
	if err != nil {
		return err
	}
	cidrs, err := NodePodCIDRs(k.e.state.PodCIDR, k.e.state.Nodes)
	if err != nil {
		return err
	}
	for i, name := range k.nodeNames() {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{kwokAnnotation: "fake"},
				Labels: map[string]string{
					LabelNodeKind:            "kwok",
					"kubernetes.io/hostname": name,
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
					"type":                   "kwok",
				},
			},
			Spec: corev1.NodeSpec{PodCIDR: cidrs[i], PodCIDRs: []string{cidrs[i]}},
		}
		got, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			got, err = c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		}
		if err != nil {
			return fmt.Errorf("register node %s: %w", name, err)
		}
		if got.Spec.PodCIDR != cidrs[i] {
			return fmt.Errorf("node %s already has podCIDR %s, want %s (podCIDRs cannot change: `kplexctl down --purge` to start over)", name, got.Spec.PodCIDR, cidrs[i])
		}
	}
	return nil
}

// nodesReady reports whether every simulated node is Ready.
func (k *kwokNodes) nodesReady(ctx context.Context) error {
	c, err := k.client()
	if err != nil {
		return err
	}
	list, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: LabelNodeKind + "=kwok"})
	if err != nil {
		return err
	}
	ready := 0
	for _, n := range list.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	if ready < k.e.state.Nodes {
		return fmt.Errorf("%d of %d nodes Ready", ready, k.e.state.Nodes)
	}
	return nil
}

// portForwardConfig is a KWOK ClusterPortForward per forward.
func portForwardConfig(fs []PortForward) []byte {
	var b []byte
	for i, f := range fs {
		b = fmt.Appendf(b, `---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata:
  name: forward-%d
spec:
  selector:
    matchNamespaces: [%q]
  forwards:
  - ports: [%d]
    target: {address: 127.0.0.1, port: %d}
`, i, f.Namespace, f.Port, f.Target)
	}
	return b
}
