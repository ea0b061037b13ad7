// Package kube is the production runtime: a tenant's apiserver,
// controller manager and optional scheduler run as Deployments in the
// tenant's host namespace (kplex-<tenant>), with the apiserver behind the
// Service kplex-apiserver and a PodDisruptionBudget per component.
//
// What the pods read comes from two Secrets, mounted read-only with only
// the keys each component needs: the operator's PKI Secret (kplex-pki)
// and kplex-control-plane (component kubeconfigs, the datastore's CA).
// New certificates or flags change the pod template's inputs hash, which
// rolls the Deployment one replica at a time (a new one serves before an
// old one goes).
//
// Every object carries kplex.dev/tenant and kplex.dev/component but never
// kplex.dev/managed: the syncer and pause leave them alone. All state is
// on the host (the objects themselves), so the operator finds it again
// after a restart.
package kube

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kplex.dev/api/naming"
	"kplex.dev/operator/internal/runtime"
)

// Runtime runs control planes as host Deployments.
type Runtime struct {
	// Client reads Deployments, Services and PodDisruptionBudgets (a
	// cache selecting kplex.dev/component is enough) and writes them and
	// Secrets.
	Client client.Client
	Images Images
	// DatastoreEndpoints are the datastore-proxy URLs as pods reach them;
	// empty: the operator's own (runtime.Tenant.DatastoreEndpoints).
	DatastoreEndpoints []string
	// ServiceType of the apiserver Service (default ClusterIP).
	ServiceType corev1.ServiceType
	// ClusterDomain of the host cluster (default cluster.local).
	ClusterDomain string
	// EndpointTemplate is the URL clients reach a tenant's apiserver at,
	// with {tenant} and {namespace} replaced (default DefaultEndpoint).
	// It names a load balancer, NodePort or SNI gateway in front of the
	// Services when clients are outside the host cluster.
	EndpointTemplate string

	mu      sync.Mutex
	written map[string]string // tenant -> hash of FilesSecret last written
}

var _ runtime.Runtime = (*Runtime)(nil)

// DefaultEndpoint is the apiserver Service's in-cluster URL: what the
// syncer shards and in-cluster clients use.
const DefaultEndpoint = "https://" + ServiceName + ".{namespace}.svc:443"

// Endpoint expands EndpointTemplate for the tenant.
func (r *Runtime) Endpoint(_ context.Context, tenant string) (string, error) {
	return ExpandEndpoint(r.EndpointTemplate, tenant)
}

// ExpandEndpoint expands an endpoint template and checks the result is
// an https URL with a host.
func ExpandEndpoint(template, tenant string) (string, error) {
	if template == "" {
		template = DefaultEndpoint
	}
	ep := strings.NewReplacer("{tenant}", tenant, "{namespace}", naming.HostNamespace(tenant)).Replace(template)
	u, err := url.Parse(ep)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return "", fmt.Errorf("apiserver endpoint %q (from %q): want an https URL with a host", ep, template)
	}
	return ep, nil
}

// Hosts are the Service's other in-cluster names.
func (r *Runtime) Hosts(tenant string) []string {
	domain := r.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	ns := naming.HostNamespace(tenant)
	return []string{ServiceName, ServiceName + "." + ns, serviceHost(tenant), serviceHost(tenant) + "." + domain}
}

// Ensure writes the tenant's files Secret, Service, Deployments and
// PodDisruptionBudgets, and removes the scheduler's when it is off.
func (r *Runtime) Ensure(ctx context.Context, t runtime.Tenant) error {
	if r.Images.APIServer == "" || r.Images.ControllerManager == "" {
		return errors.New("the operator has no --apiserver-image or --controller-manager-image")
	}
	ds := r.DatastoreEndpoints
	if len(ds) == 0 {
		ds = t.DatastoreEndpoints
	}
	extra, err := files(t)
	if err != nil {
		return err
	}
	if err := r.ensureFiles(ctx, t.Name, extra); err != nil {
		return err
	}
	typ := r.ServiceType
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	if err := r.apply(ctx, service(t.Name, typ), func(cur, want client.Object) {
		c, w := cur.(*corev1.Service), want.(*corev1.Service)
		// Keep what the host allocated (ClusterIP, node ports).
		ports := w.Spec.Ports
		for i := range ports {
			for _, p := range c.Spec.Ports {
				if p.Name == ports[i].Name && w.Spec.Type != corev1.ServiceTypeClusterIP {
					ports[i].NodePort = p.NodePort
				}
			}
		}
		c.Spec.Type, c.Spec.Selector, c.Spec.Ports = w.Spec.Type, w.Spec.Selector, ports
	}); err != nil {
		return err
	}
	cs, err := components(t, r.Images, ds)
	if err != nil {
		return err
	}
	secrets := map[string]map[string][]byte{PKISecret: t.PKI, FilesSecret: extra}
	for _, c := range cs {
		if err := r.apply(ctx, deployment(t.Name, c, inputsHash(c, secrets)), func(cur, want client.Object) {
			cur.(*appsv1.Deployment).Spec = want.(*appsv1.Deployment).Spec
		}); err != nil {
			return err
		}
		if err := r.apply(ctx, pdb(t.Name, c.name), func(cur, want client.Object) {
			cur.(*policyv1.PodDisruptionBudget).Spec = want.(*policyv1.PodDisruptionBudget).Spec
		}); err != nil {
			return err
		}
	}
	if !t.Scheduler {
		return r.removeComponent(ctx, t.Name, runtime.Scheduler)
	}
	return nil
}

// ensureFiles writes FilesSecret when its content differs from what this
// operator last wrote (read from the host after a restart).
func (r *Runtime) ensureFiles(ctx context.Context, tenant string, data map[string][]byte) error {
	h := dataHash(data)
	r.mu.Lock()
	same := r.written[tenant] == h
	r.mu.Unlock()
	if same {
		return nil
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: FilesSecret, Namespace: naming.HostNamespace(tenant)}}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(sec), sec)
	switch {
	case apierrors.IsNotFound(err):
		sec.Labels, sec.Data, sec.Type = Labels(tenant, "files"), data, corev1.SecretTypeOpaque
		err = r.Client.Create(ctx, sec)
	case err == nil && !equalData(sec.Data, data):
		sec.Data = data
		err = r.Client.Update(ctx, sec)
	}
	if err != nil {
		return fmt.Errorf("tenant %s: secret %s: %w", tenant, FilesSecret, err)
	}
	r.mu.Lock()
	if r.written == nil {
		r.written = map[string]string{}
	}
	r.written[tenant] = h
	r.mu.Unlock()
	return nil
}

// apply creates want, or updates the existing object through set when
// the desired object changed since it was last written (its hash is kept
// in an annotation, so nothing is written on an unchanged resync).
func (r *Runtime) apply(ctx context.Context, want client.Object, set func(cur, want client.Object)) error {
	h := specHash(want)
	ann := want.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[annotationSpec] = h
	want.SetAnnotations(ann)
	// A zero object: decoding into a copy of want would merge its maps.
	cur := reflect.New(reflect.TypeOf(want).Elem()).Interface().(client.Object)
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), cur)
	kind := fmt.Sprintf("%T", want)[1:]
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s %s/%s: %w", kind, want.GetNamespace(), want.GetName(), err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("get %s %s/%s: %w", kind, want.GetNamespace(), want.GetName(), err)
	case cur.GetAnnotations()[annotationSpec] == h:
		return nil
	}
	set(cur, want)
	cur.SetLabels(want.GetLabels())
	a := cur.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[annotationSpec] = h
	cur.SetAnnotations(a)
	if err := r.Client.Update(ctx, cur); err != nil {
		return fmt.Errorf("update %s %s/%s: %w", kind, want.GetNamespace(), want.GetName(), err)
	}
	return nil
}

// Ready reports ready when each component's Deployment has rolled out
// its current spec and has at least one available replica.
func (r *Runtime) Ready(ctx context.Context, tenant string) error {
	list, err := r.deployments(ctx, tenant)
	if err != nil {
		return err
	}
	found := map[string]bool{}
	var problems []string
	for _, d := range list.Items {
		c := d.Labels[naming.LabelComponent]
		found[c] = true
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		st := d.Status
		switch {
		case want == 0:
			problems = append(problems, c+" is scaled to zero")
		case st.ObservedGeneration < d.Generation:
			problems = append(problems, c+": rollout not observed yet")
		case st.UpdatedReplicas < want:
			problems = append(problems, fmt.Sprintf("%s: %d of %d replicas updated", c, st.UpdatedReplicas, want))
		case st.AvailableReplicas < 1:
			problems = append(problems, fmt.Sprintf("%s: 0 of %d replicas available%s", c, want, progressMessage(d)))
		}
	}
	for _, c := range []string{runtime.APIServer, runtime.ControllerManager} {
		if !found[c] {
			problems = append(problems, "deployment "+DeploymentName(c)+" does not exist")
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// deployments are the tenant's control-plane Deployments (from the cache).
func (r *Runtime) deployments(ctx context.Context, tenant string) (*appsv1.DeploymentList, error) {
	var list appsv1.DeploymentList
	if err := r.Client.List(ctx, &list, client.InNamespace(naming.HostNamespace(tenant)), client.MatchingLabels{naming.LabelTenant: tenant},
		client.HasLabels{naming.LabelComponent}); err != nil {
		return nil, fmt.Errorf("tenant %s: list deployments: %w", tenant, err)
	}
	return &list, nil
}

// progressMessage is the Deployment's reason for not progressing.
func progressMessage(d appsv1.Deployment) string {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse {
			return " (" + c.Message + ")"
		}
	}
	return ""
}

// Stop scales every component to zero and keeps the objects (pause).
// The next Ensure restores the replicas.
func (r *Runtime) Stop(ctx context.Context, tenant string) error {
	list, err := r.deployments(ctx, tenant)
	if err != nil {
		return err
	}
	for i := range list.Items {
		d := &list.Items[i]
		if d.Spec.Replicas != nil && *d.Spec.Replicas == 0 {
			continue
		}
		d.Spec.Replicas = ptr(int32(0))
		delete(d.Annotations, annotationSpec) // Ensure writes the full spec again
		if err := r.Client.Update(ctx, d); err != nil {
			return fmt.Errorf("tenant %s: scale %s to zero: %w", tenant, d.Name, err)
		}
	}
	return nil
}

// Remove deletes every object this runtime made for the tenant.
func (r *Runtime) Remove(ctx context.Context, tenant string) error {
	var errs []error
	for _, c := range []string{runtime.Scheduler, runtime.ControllerManager, runtime.APIServer} {
		errs = append(errs, r.removeComponent(ctx, tenant, c))
	}
	ns := naming.HostNamespace(tenant)
	for _, o := range []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: FilesSecret, Namespace: ns}},
	} {
		if err := r.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("tenant %s: delete %s: %w", tenant, o.GetName(), err))
		}
	}
	r.mu.Lock()
	delete(r.written, tenant)
	r.mu.Unlock()
	return errors.Join(errs...)
}

// removeComponent deletes a component's Deployment and PDB.
func (r *Runtime) removeComponent(ctx context.Context, tenant, c string) error {
	ns := naming.HostNamespace(tenant)
	var errs []error
	for _, o := range []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: DeploymentName(c), Namespace: ns}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: DeploymentName(c), Namespace: ns}},
	} {
		// Through the cache first: a resync of a tenant without a
		// scheduler must not cost two API calls.
		if err := r.Client.Get(ctx, client.ObjectKeyFromObject(o), o); apierrors.IsNotFound(err) {
			continue
		}
		if err := r.Client.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("tenant %s: delete %s %s: %w", tenant, fmt.Sprintf("%T", o)[1:], o.GetName(), err))
		}
	}
	return errors.Join(errs...)
}
