package vcluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kplex.dev/api/naming"
)

// Forward is a running port-forward to a tenant's apiserver.
type Forward struct {
	// Kubeconfig is the admin kubeconfig with its server on the local
	// port.
	Kubeconfig []byte
	LocalPort  int
	Pod        string
	// Done receives the forward's end: nil when ctx ended, else why it
	// broke (the pod went away...).
	Done <-chan error
}

// PortForward opens a local port on 127.0.0.1 (localPort, 0: any free
// one) forwarded through the host API server to a ready apiserver pod of
// the tenant (kubernetes runtime), and returns the admin kubeconfig that
// uses it. The forward runs until ctx ends. Loopback is in every tenant
// serving certificate, so TLS verification stays on.
func (c *Client) PortForward(ctx context.Context, name string, localPort int, errOut io.Writer) (*Forward, error) {
	kc, err := c.Kubeconfig(ctx, name)
	if err != nil {
		return nil, err
	}
	pod, port, err := c.apiserverPod(ctx, name)
	if err != nil {
		return nil, err
	}
	rt, upgrader, err := spdy.RoundTripperFor(c.cfg)
	if err != nil {
		return nil, fmt.Errorf("port-forward: %w", err)
	}
	u, err := url.Parse(c.cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("host server %q: %w", c.cfg.Host, err)
	}
	u.Path += fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/portforward", pod.Namespace, pod.Name)
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("%d:%d", localPort, port)}, stop, ready, io.Discard, errOut)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	go func() {
		<-ctx.Done()
		close(stop)
	}()
	select {
	case <-ready:
	case err := <-done:
		return nil, fmt.Errorf("port-forward to %s/%s: %w", pod.Namespace, pod.Name, err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		return nil, fmt.Errorf("port-forward to %s/%s: no local port (%v)", pod.Namespace, pod.Name, err)
	}
	local := int(ports[0].Local)
	cfg, err := clientcmd.Load(kc)
	if err != nil {
		return nil, fmt.Errorf("admin kubeconfig: %w", err)
	}
	for _, cl := range cfg.Clusters {
		cl.Server = "https://127.0.0.1:" + strconv.Itoa(local)
		cl.TLSServerName = ""
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("admin kubeconfig: %w", err)
	}
	return &Forward{Kubeconfig: out, LocalPort: local, Pod: pod.Namespace + "/" + pod.Name, Done: done}, nil
}

// apiserverPod picks a ready apiserver pod of the tenant and its https
// port.
func (c *Client) apiserverPod(ctx context.Context, name string) (*corev1.Pod, int, error) {
	ns := naming.HostNamespace(name)
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace(ns),
		client.MatchingLabels{naming.LabelTenant: name, naming.LabelComponent: "apiserver"}); err != nil {
		return nil, 0, fmt.Errorf("apiserver pods of %s: %w", name, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || !podReady(p) {
			continue
		}
		for _, ctr := range p.Spec.Containers {
			for _, cp := range ctr.Ports {
				if cp.Name == "https" {
					return p, int(cp.ContainerPort), nil
				}
			}
		}
	}
	if len(pods.Items) == 0 {
		return nil, 0, fmt.Errorf("virtual cluster %s has no apiserver pods in %s: --port-forward is for the operator's kubernetes runtime (with the process runtime, `kplexctl connect %s` alone works)", name, ns, name)
	}
	return nil, 0, fmt.Errorf("none of the %d apiserver pods of %s in %s is ready (`kplexctl describe %s`)", len(pods.Items), name, ns, name)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
