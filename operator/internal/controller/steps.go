package controller

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"kplex.dev/api/naming"
	"kplex.dev/api/v1alpha1"
	"kplex.dev/cli/kubeconfig"
	"kplex.dev/operator/internal/datastore"
	"kplex.dev/operator/internal/registry"
	"kplex.dev/operator/internal/runtime"
	"kplex.dev/operator/internal/tenantpki"
)

// Names of what the operator keeps for a tenant.
const (
	// PKISecret holds the tenant PKI, in the tenant's host namespace.
	PKISecret = "kplex-pki"
	// KubeconfigKey is the admin kubeconfig's key in its Secret.
	KubeconfigKey = "kubeconfig"
	// LabelOperator marks host namespaces the operator made.
	LabelOperator = naming.Domain + "/virtualcluster"
)

// AdminSecretName is the Secret (in the VirtualCluster's namespace) with
// the tenant's admin kubeconfig.
func AdminSecretName(vc string) string { return vc + "-kubeconfig" }

// uniqueName refuses a second VirtualCluster with a name another namespace
// already uses: the name is the tenant's identity in the datastore, the
// syncer and the host namespace.
func (s *run) uniqueName(ctx context.Context) (bool, error) {
	o, err := s.r.olderNamesake(ctx, s.vc)
	if err != nil {
		return false, err
	}
	if o != nil {
		s.setPhase(v1alpha1.PhaseFailed)
		setCondition(s.vc, v1alpha1.ConditionReady, false, "NameInUse",
			fmt.Sprintf("namespace %s already has a VirtualCluster named %s; tenant names are unique across namespaces: choose another name", o.Namespace, o.Name))
		return false, nil
	}
	return true, nil
}

// olderNamesake returns the VirtualCluster of another namespace that owns
// vc's name (the older one; namespace order breaks a tie), or nil.
func (r *Reconciler) olderNamesake(ctx context.Context, vc *v1alpha1.VirtualCluster) (*v1alpha1.VirtualCluster, error) {
	var all v1alpha1.VirtualClusterList
	if err := r.Client.List(ctx, &all); err != nil {
		return nil, err
	}
	for i, o := range all.Items {
		if o.Name == vc.Name && o.Namespace != vc.Namespace &&
			(o.CreationTimestamp.Before(&vc.CreationTimestamp) || (o.CreationTimestamp.Equal(&vc.CreationTimestamp) && o.Namespace < vc.Namespace)) {
			return &all.Items[i], nil
		}
	}
	return nil, nil
}

// namespace ensures the tenant's host namespace.
func (s *run) namespace(ctx context.Context) (bool, error) {
	name := naming.HostNamespace(s.vc.Name)
	var ns corev1.Namespace
	err := s.r.Client.Get(ctx, client.ObjectKey{Name: name}, &ns)
	switch {
	case apierrors.IsNotFound(err):
		ns = corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			naming.LabelTenant: s.vc.Name, LabelOperator: s.vc.Namespace + "." + s.vc.Name,
		}}}
		if err := s.r.Client.Create(ctx, &ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, err
		}
		if s.vc.Status.Phase == v1alpha1.PhasePending {
			s.setPhase(v1alpha1.PhaseProvisioning)
		}
		return true, nil
	case err != nil:
		return false, err
	case ns.Labels[naming.LabelTenant] != s.vc.Name:
		s.setPhase(v1alpha1.PhaseFailed)
		setCondition(s.vc, v1alpha1.ConditionReady, false, "HostNamespaceTaken",
			fmt.Sprintf("host namespace %s exists and is not kplex's for tenant %s; remove it or choose another name", name, s.vc.Name))
		return false, nil
	case !ns.DeletionTimestamp.IsZero():
		// A deleted VirtualCluster of the same name is still being cleaned up.
		setCondition(s.vc, v1alpha1.ConditionReady, false, "Waiting", "host namespace "+name+" from an earlier VirtualCluster of this name is still terminating")
		return false, nil
	}
	if s.vc.Status.Phase == v1alpha1.PhasePending || s.vc.Status.Phase == v1alpha1.PhaseFailed {
		s.setPhase(v1alpha1.PhaseProvisioning)
	}
	return true, nil
}

func (s *run) ensureEndpoint(ctx context.Context) (bool, error) {
	ep, err := s.r.Runtime.Endpoint(ctx, s.vc.Name)
	if err != nil {
		return false, err
	}
	s.endpoint = ep
	s.vc.Status.Endpoint = ep
	return true, nil
}

// ensurePKI creates or rotates the tenant PKI Secret and the admin
// kubeconfig Secret.
func (s *run) ensurePKI(ctx context.Context) (bool, error) {
	u, err := url.Parse(s.endpoint)
	if err != nil {
		return false, fmt.Errorf("endpoint %q: %w", s.endpoint, err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: PKISecret, Namespace: naming.HostNamespace(s.vc.Name)}}
	err = s.r.Client.Get(ctx, client.ObjectKeyFromObject(sec), sec)
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	exists := err == nil
	ck := s.r.checksOf(s.vc.Name)
	ck.mu.Lock()
	fresh := exists && ck.pkiVersion == sec.ResourceVersion && time.Since(ck.pkiAt) < pkiRecheck
	ck.mu.Unlock()
	if fresh {
		s.pki = sec.Data
		return s.ensureAdminSecret(ctx)
	}
	data, changed, err := tenantpki.Ensure(sec.Data, tenantpki.Inputs{
		Tenant: s.vc.Name, ServiceCIDR: s.r.ServiceCIDR, EndpointHosts: append([]string{u.Hostname()}, s.r.Runtime.Hosts(s.vc.Name)...), DatastoreCA: s.r.DatastoreCA,
	})
	if err != nil {
		return false, err
	}
	if changed {
		sec.Data, sec.Type = data, corev1.SecretTypeOpaque
		sec.Labels = map[string]string{naming.LabelTenant: s.vc.Name}
		if exists {
			err = s.r.Client.Update(ctx, sec)
		} else {
			err = s.r.Client.Create(ctx, sec)
		}
		if err != nil {
			return false, fmt.Errorf("PKI secret: %w", err)
		}
		s.log.Info("tenant PKI written", "created", !exists)
	}
	s.pki = data
	ck.mu.Lock()
	ck.pkiVersion, ck.pkiAt = sec.ResourceVersion, time.Now()
	ck.mu.Unlock()
	return s.ensureAdminSecret(ctx)
}

// ensureAdminSecret writes the admin kubeconfig Secret beside the
// VirtualCluster.
func (s *run) ensureAdminSecret(ctx context.Context) (bool, error) {
	kc, err := s.kubeconfig(tenantpki.Admin)
	if err != nil {
		return false, err
	}
	admin := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: AdminSecretName(s.vc.Name), Namespace: s.vc.Namespace}}
	if _, err := controllerutil.CreateOrUpdate(ctx, s.r.Client, admin, func() error {
		admin.Labels = map[string]string{naming.LabelTenant: s.vc.Name}
		admin.Data = map[string][]byte{KubeconfigKey: kc}
		return controllerutil.SetControllerReference(s.vc, admin, s.r.Client.Scheme())
	}); err != nil {
		return false, fmt.Errorf("admin kubeconfig secret: %w", err)
	}
	s.vc.Status.AdminKubeconfigSecret = admin.Name
	return true, nil
}

func (s *run) kubeconfig(id string) ([]byte, error) {
	return kubeconfig.Encode(kubeconfig.Config{Name: s.vc.Name, Server: s.endpoint,
		CAPEM: s.pki[tenantpki.CA+".crt"], CertPEM: s.pki[id+".crt"], KeyPEM: s.pki[id+".key"]})
}

// datastore writes the tenant's limits and checks its keyspace answers.
func (s *run) datastore(ctx context.Context) (bool, error) {
	var l registry.Limits
	if q := s.vc.Spec.Datastore.Quota; q != nil {
		l = registry.Limits{MaxKeys: deref(q.MaxKeys), MaxBytes: deref(q.MaxBytes), RequestsPerSecond: float64(deref(q.RequestsPerSecond)), Burst: int(deref(q.Burst)), MaxWatches: int64(deref(q.MaxWatches))}
	}
	if err := s.r.Quotas.Set(ctx, s.vc.Name, l); err != nil {
		return false, err
	}
	if b := s.vc.Spec.Datastore.Backend; b != "" && b != s.r.Backend {
		setCondition(s.vc, v1alpha1.ConditionDatastoreReady, false, "BackendUnavailable",
			fmt.Sprintf("datastore.backend %s: this platform's datastore-proxy runs %s", b, s.r.Backend))
		setCondition(s.vc, v1alpha1.ConditionReady, false, "DatastoreNotReady", "see DatastoreReady")
		s.setPhase(v1alpha1.PhaseFailed)
		return false, nil
	}
	ck := s.r.checksOf(s.vc.Name)
	ck.mu.Lock()
	recent := time.Since(ck.datastoreAt) < datastoreRecheck
	ck.mu.Unlock()
	if recent && apimeta.IsStatusConditionTrue(s.vc.Status.Conditions, v1alpha1.ConditionDatastoreReady) {
		return true, nil
	}
	_, err := datastore.Check(ctx, s.datastoreTenant())
	if err != nil {
		setCondition(s.vc, v1alpha1.ConditionDatastoreReady, false, "Unreachable", err.Error())
		setCondition(s.vc, v1alpha1.ConditionReady, false, "DatastoreNotReady", "see DatastoreReady")
		return false, nil
	}
	setCondition(s.vc, v1alpha1.ConditionDatastoreReady, true, "Ready", "the tenant's keyspace answers with its certificate")
	ck.mu.Lock()
	ck.datastoreAt = time.Now()
	ck.mu.Unlock()
	return true, nil
}

func (s *run) datastoreTenant() datastore.Tenant {
	return datastore.Tenant{Name: s.vc.Name, Endpoints: s.r.DatastoreEndpoints, ServerCA: s.r.DatastoreServerCA,
		CertPEM: s.pki[tenantpki.Datastore+".crt"], KeyPEM: s.pki[tenantpki.Datastore+".key"]}
}

func (s *run) runtimeTenant() runtime.Tenant {
	cp := s.vc.Spec.ControlPlane
	size := func(c v1alpha1.ComponentSpec) runtime.Size {
		return runtime.Size{Replicas: deref(c.Replicas), Resources: c.Resources}
	}
	return runtime.Tenant{Name: s.vc.Name, PKI: s.pki, DatastoreEndpoints: s.r.DatastoreEndpoints,
		DatastoreServerCA: s.r.DatastoreServerCA, ServiceCIDR: s.r.ServiceCIDR, Scheduler: cp.Scheduler.Enabled,
		APIServer: size(cp.APIServer), ControllerManager: size(cp.ControllerManager), SchedulerSize: size(cp.Scheduler.ComponentSpec)}
}

// controlPlane starts what is not running and waits for it to be ready.
func (s *run) controlPlane(ctx context.Context) (bool, error) {
	if err := s.r.Runtime.Ensure(ctx, s.runtimeTenant()); errors.Is(err, runtime.ErrQueued) {
		setCondition(s.vc, v1alpha1.ConditionControlPlaneReady, false, "Queued", err.Error())
		setCondition(s.vc, v1alpha1.ConditionReady, false, "ControlPlaneNotReady", "see ControlPlaneReady")
		return false, nil
	} else if err != nil {
		setCondition(s.vc, v1alpha1.ConditionControlPlaneReady, false, "StartFailed", err.Error())
		return false, err
	}
	if err := s.r.Runtime.Ready(ctx, s.vc.Name); err != nil {
		setCondition(s.vc, v1alpha1.ConditionControlPlaneReady, false, "Starting", err.Error())
		setCondition(s.vc, v1alpha1.ConditionReady, false, "ControlPlaneNotReady", "see ControlPlaneReady")
		return false, nil
	}
	setCondition(s.vc, v1alpha1.ConditionControlPlaneReady, true, "Ready", "apiserver and controller manager answer their health checks")
	return true, nil
}

// syncer registers the tenant with the syncer shards.
func (s *run) syncer(ctx context.Context) (bool, error) {
	kc, err := s.kubeconfig(tenantpki.Syncer)
	if err != nil {
		return false, err
	}
	sp := s.vc.Spec.Sync
	u, _ := url.Parse(s.endpoint)
	t := registry.SyncerTenant{Name: s.vc.Name, PodSecurity: sp.PodSecurity, ConfigMaps: sp.ConfigMaps, Secrets: sp.Secrets,
		APIServerEndpoint: u.Host, RealNodes: sp.RealNodes}
	if tn := s.vc.Spec.Tenancy; tn != nil && tn.DedicatedNodes != nil {
		t.NodeSelector = tn.DedicatedNodes.NodeSelector
		for _, tol := range tn.DedicatedNodes.Tolerations {
			t.Tolerations = append(t.Tolerations, corev1.Toleration{Key: tol.Key, Operator: corev1.TolerationOperator(tol.Operator),
				Value: tol.Value, Effect: corev1.TaintEffect(tol.Effect)})
		}
	}
	// Listed, even when empty (absent means all to the syncer); a spec
	// without the field (stored before the CRD defaulted it) keeps all.
	var synced []string
	if sp.Resources != nil {
		synced = []string{}
	}
	for _, res := range sp.Resources {
		switch res {
		case "storageclasses":
			t.ImportStorageClasses = true
		case "ingressclasses":
			t.ImportIngressClasses = true
		default:
			synced = append(synced, res)
		}
	}
	if synced != nil {
		t.Resources = &synced
	}
	n, err := s.sameNamespaceTenants(ctx, s.vc.Spec.Networking)
	if err != nil {
		return false, err
	}
	t.ExportServices, t.ImportServices = serviceMappings(n)
	wrote, err := s.r.Syncer.Register(ctx, t, kc, s.privateKubeconfig)
	if err != nil {
		setCondition(s.vc, v1alpha1.ConditionSyncerAssigned, false, "RegistrationFailed", err.Error())
		return false, err
	}
	if wrote {
		s.log.Info("registered with the syncer shards")
	}
	if s.privateKubeconfig != nil {
		// Registered all the same: the shard waits for the cluster too.
		if err := privateReachable(ctx, s.privateKubeconfig); err != nil {
			setCondition(s.vc, v1alpha1.ConditionSyncerAssigned, false, reasonPrivateClusterDown,
				"spec.tenancy.privateNodes: "+err.Error()+"; check the kubeconfig in Secret "+s.vc.Spec.Tenancy.PrivateNodes.KubeconfigSecret)
			return false, nil
		}
	}
	owner, err := s.r.Shards.Owner(ctx, s.vc.Name)
	switch {
	case err != nil:
		s.log.Warn("cannot read the tenant's shard", "err", err)
	case owner != "":
		s.vc.Status.SyncerShard = owner
	}
	if s.vc.Status.SyncerShard != "" {
		setCondition(s.vc, v1alpha1.ConditionSyncerAssigned, true, "Owned", "syncer shard "+s.vc.Status.SyncerShard+" owns the tenant")
	} else {
		setCondition(s.vc, v1alpha1.ConditionSyncerAssigned, true, "Registered", "registered with the syncer shards")
	}
	return true, nil
}

// supported refuses, with the field named, what the API accepts but the
// operator cannot do (networking the CRD's rules cannot judge alone),
// rather than ignoring it.
func (s *run) supported(ctx context.Context) (bool, error) {
	if s.refused("InvalidNetworking", networkingProblems(s.vc.Spec.Networking)) {
		return false, nil
	}
	problems, err := s.privateTenantServices(ctx)
	if err != nil || s.refused("InvalidNetworking", problems) {
		return false, err
	}
	if s.vc.Spec.Tenancy != nil && s.vc.Spec.Tenancy.PrivateNodes != nil {
		return true, nil // its namespaces are in its own cluster: checked there (privateNodes)
	}
	return s.consented(ctx, s.r.Client)
}

// consented checks, when the operator asks for it, that the host
// namespaces the tenant's networking reaches (in the cluster c reads)
// consent to it; else the tenant is Failed, naming the fields, until an
// administrator labels them.
func (s *run) consented(ctx context.Context, c client.Reader) (bool, error) {
	if !s.r.NamespaceConsent {
		return true, nil
	}
	problems, err := consentProblems(s.vc.Spec.Networking, func(ns string) (map[string]string, bool, error) {
		var o corev1.Namespace
		err := c.Get(ctx, client.ObjectKey{Name: ns}, &o)
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return o.Labels, err == nil, err
	})
	if err != nil || s.refused("NamespaceConsent", problems) {
		return false, err
	}
	return true, nil
}

// refused marks the tenant Failed for problems (named by field) under
// reason, and reports whether there were any.
func (s *run) refused(reason string, problems []string) bool {
	if len(problems) == 0 {
		return false
	}
	setCondition(s.vc, v1alpha1.ConditionReady, false, reason, strings.Join(problems, "; "))
	s.setPhase(v1alpha1.PhaseFailed)
	return true
}

// privateTenantServices refuses tenantServices mappings across private
// nodes: a private tenant's services are in its own cluster, and another
// tenant's host copies are not there (nor are its copies on the host).
func (s *run) privateTenantServices(ctx context.Context) ([]string, error) {
	private := func(vc *v1alpha1.VirtualCluster) bool {
		return vc.Spec.Tenancy != nil && vc.Spec.Tenancy.PrivateNodes != nil
	}
	var problems []string
	for i, m := range s.vc.Spec.Networking.TenantServices {
		field := fmt.Sprintf("spec.networking.tenantServices[%d]", i)
		if private(s.vc) {
			problems = append(problems, field+": not available with spec.tenancy.privateNodes (this tenant's services are in another cluster)")
			continue
		}
		var other v1alpha1.VirtualCluster
		err := s.r.Client.Get(ctx, client.ObjectKey{Namespace: s.vc.Namespace, Name: m.Tenant}, &other)
		if client.IgnoreNotFound(err) != nil {
			return nil, err
		}
		if err == nil && private(&other) {
			problems = append(problems, fmt.Sprintf("%s: tenant %s has private nodes: its services are in another cluster", field, m.Tenant))
		}
	}
	return problems, nil
}

// pause stops the control plane, unregisters the tenant from the syncer
// and removes its host pods; every object stays in the datastore.
func (s *run) pause(ctx context.Context) (bool, error) {
	if !s.vc.Spec.Paused {
		return true, nil
	}
	if err := s.r.Syncer.Unregister(ctx, s.vc.Name); err != nil {
		return false, err
	}
	// Host pods go only once no shard syncs the tenant: a shard still
	// serving it would take the deletions for evictions and replace them.
	if owner, err := s.r.Shards.Owner(ctx, s.vc.Name); err == nil && owner != "" {
		setCondition(s.vc, v1alpha1.ConditionSyncerAssigned, false, "Releasing", "waiting for syncer shard "+owner+" to release the tenant")
		return false, nil
	}
	s.vc.Status.SyncerShard = ""
	if err := s.r.Runtime.Stop(ctx, s.vc.Name); err != nil {
		return false, err
	}
	pods, err := s.privateHostClient()
	if err != nil {
		return false, err
	}
	if err := pods.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(naming.HostNamespace(s.vc.Name)),
		client.MatchingLabels{naming.LabelManaged: "true"}); err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("delete host pods: %w", err)
	}
	s.setPhase(v1alpha1.PhasePaused)
	for _, c := range []string{v1alpha1.ConditionControlPlaneReady, v1alpha1.ConditionSyncerAssigned, v1alpha1.ConditionReady} {
		setCondition(s.vc, c, false, "Paused", "spec.paused is true: control plane stopped, host pods removed, data kept")
	}
	s.vc.Status.Pods = 0
	return false, nil
}

func deref[T int32 | int64](p *T) T {
	if p == nil {
		return 0
	}
	return *p
}

// trimMessage keeps condition messages readable.
func trimMessage(m string) string {
	m = strings.TrimSpace(m)
	if len(m) > 1000 {
		m = m[:1000] + "..."
	}
	return m
}

// sameNamespaceTenants drops the tenantServices whose tenant is not a
// VirtualCluster in this one's namespace (another namespace's tenants are
// not this one's to read; one not created yet is mapped once it is, at a
// later reconcile).
func (s *run) sameNamespaceTenants(ctx context.Context, n v1alpha1.NetworkingSpec) (v1alpha1.NetworkingSpec, error) {
	var kept []v1alpha1.TenantServiceMapping
	for i, m := range n.TenantServices {
		var other v1alpha1.VirtualCluster
		err := s.r.Client.Get(ctx, client.ObjectKey{Namespace: s.vc.Namespace, Name: m.Tenant}, &other)
		switch {
		case apierrors.IsNotFound(err):
			s.log.Info("tenant service waits for its VirtualCluster", "field", fmt.Sprintf("spec.networking.tenantServices[%d]", i), "tenant", m.Tenant)
		case err != nil:
			return n, err
		default:
			kept = append(kept, m)
		}
	}
	n.TenantServices = kept
	return n, nil
}
