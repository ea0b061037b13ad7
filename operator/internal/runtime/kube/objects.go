package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"kplex.dev/api/naming"
	apiservertenant "kplex.dev/apiserver/tenant"
	"kplex.dev/cli/kubeconfig"
	cmtenant "kplex.dev/controller-manager/tenant"
	"kplex.dev/operator/internal/runtime"
	"kplex.dev/operator/internal/tenantpki"
	schedtenant "kplex.dev/scheduler/tenant"
)

// Names of the host objects in the tenant's host namespace. The "kplex-"
// prefix keeps them apart from synced tenant objects, whose host names
// end in the virtual namespace's length (naming.HostName) or a hash.
const (
	ServiceName = "kplex-apiserver"
	// FilesSecret holds what the components read besides the PKI
	// Secret: their kubeconfigs and the datastore's serving CA.
	FilesSecret = "kplex-control-plane"
	// PKISecret is the operator's tenant PKI Secret (controller.PKISecret),
	// mounted read-only.
	PKISecret = "kplex-pki"
)

// Ports inside the pods.
const (
	APIServerPort  = 6443
	ControllerPort = 10257
	SchedulerPort  = 10259
	servicePort    = 443
	mountDir       = "/etc/kplex"
)

// AnnotationInputs is the hash of everything a component reads at start,
// on its pod template: new certificates or flags roll the Deployment.
const AnnotationInputs = naming.Domain + "/inputs"

// annotationSpec is the hash of a desired object, on the object: an
// unchanged desire is not written again.
const annotationSpec = naming.Domain + "/spec-hash"

// DeploymentName is a component's Deployment (and PodDisruptionBudget).
func DeploymentName(component string) string { return "kplex-" + component }

// Labels select one component of one tenant.
func Labels(tenant, component string) map[string]string {
	return map[string]string{naming.LabelTenant: tenant, naming.LabelComponent: component}
}

// Images are the control-plane images; each runs its binary
// (kplex-apiserver, kplex-controller-manager, kplex-scheduler) from PATH.
type Images struct {
	APIServer, ControllerManager, Scheduler string
	PullPolicy                              corev1.PullPolicy
}

// serviceHost is the apiserver Service's in-cluster name.
func serviceHost(tenant string) string {
	return ServiceName + "." + naming.HostNamespace(tenant) + ".svc"
}

// files is what FilesSecret holds for a tenant.
func files(t runtime.Tenant) (map[string][]byte, error) {
	out := map[string][]byte{runtime.DatastoreCAFile: t.DatastoreServerCA}
	server := fmt.Sprintf("https://%s:%d", serviceHost(t.Name), servicePort)
	for _, id := range []string{tenantpki.ControllerMgr, tenantpki.Scheduler} {
		b, err := kubeconfig.Encode(kubeconfig.Config{Name: "kplex-" + t.Name, Server: server,
			CAPEM: t.PKI[tenantpki.CA+".crt"], CertPEM: t.PKI[id+".crt"], KeyPEM: t.PKI[id+".key"]})
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.Name, err)
		}
		out[id+".kubeconfig"] = b
	}
	return out, nil
}

// mount is one file a component reads: a key of the PKI Secret or of
// FilesSecret.
type mount struct{ secret, key string }

func (m mount) path() string { return mountDir + "/" + m.key }

func pkiFile(key string) mount   { return mount{PKISecret, key} }
func extraFile(key string) mount { return mount{FilesSecret, key} }

// component is what differs between the Deployments.
type component struct {
	name, image string
	pullPolicy  corev1.PullPolicy
	args        []string
	env         []string
	mounts      []mount
	port        int32
	probePath   string
	size        runtime.Size
}

// components are the tenant's control-plane components, in start order.
func components(t runtime.Tenant, img Images, datastore []string) ([]component, error) {
	file := func(key string) string { return mountDir + "/" + key }
	apiCfg := runtime.APIServerConfig(t, file, datastore)
	apiCfg.BindAddress, apiCfg.AdvertiseAddress, apiCfg.SecurePort = "0.0.0.0", "$(POD_IP)", APIServerPort
	apiArgs, err := apiservertenant.Flags(apiCfg)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: apiserver flags: %w", t.Name, err)
	}
	cmCfg := runtime.ControllerManagerConfig(t, file)
	cmCfg.BindAddress, cmCfg.SecurePort = "0.0.0.0", ControllerPort
	cmArgs, err := cmtenant.Flags(cmCfg)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: controller-manager flags: %w", t.Name, err)
	}
	cs := []component{{
		name: runtime.APIServer, image: img.APIServer, args: apiArgs, env: apiservertenant.ProcessEnv,
		mounts: []mount{extraFile(runtime.DatastoreCAFile), pkiFile(tenantpki.Datastore + ".crt"), pkiFile(tenantpki.Datastore + ".key"),
			pkiFile(tenantpki.APIServer + ".crt"), pkiFile(tenantpki.APIServer + ".key"), pkiFile(tenantpki.CA + ".crt"),
			pkiFile(tenantpki.FrontProxyCA + ".crt"), pkiFile(tenantpki.FrontProxyClient + ".crt"), pkiFile(tenantpki.FrontProxyClient + ".key"),
			pkiFile(tenantpki.SAKey), pkiFile(tenantpki.SAPub)},
		port: APIServerPort, probePath: "/readyz", size: t.APIServer,
	}, {
		name: runtime.ControllerManager, image: img.ControllerManager, args: cmArgs, env: cmtenant.ProcessEnv,
		mounts: []mount{extraFile(runtime.ControllerKubeconfigFile), pkiFile(tenantpki.CA + ".crt"), pkiFile(tenantpki.CA + ".key"),
			pkiFile(tenantpki.SAKey), pkiFile(tenantpki.ControllerServe + ".crt"), pkiFile(tenantpki.ControllerServe + ".key")},
		port: ControllerPort, probePath: "/healthz", size: t.ControllerManager,
	}}
	if t.Scheduler {
		if img.Scheduler == "" {
			return nil, fmt.Errorf("tenant %s: spec.controlPlane.scheduler.enabled, but the operator has no --scheduler-image", t.Name)
		}
		args, err := schedtenant.Flags(schedtenant.Config{Name: t.Name, Kubeconfig: extraFile(runtime.SchedulerKubeconfigFile).path(),
			BindAddress: "0.0.0.0", SecurePort: SchedulerPort, LeaderElect: t.SchedulerSize.ReplicasOr1() > 1})
		if err != nil {
			return nil, fmt.Errorf("tenant %s: scheduler flags: %w", t.Name, err)
		}
		cs = append(cs, component{name: runtime.Scheduler, image: img.Scheduler, args: args,
			mounts: []mount{extraFile(runtime.SchedulerKubeconfigFile)}, port: SchedulerPort, probePath: "/healthz", size: t.SchedulerSize})
	}
	for i := range cs {
		cs[i].pullPolicy = img.PullPolicy
	}
	return cs, nil
}

// inputsHash digests a component's arguments and the content of every
// file it mounts.
func inputsHash(c component, secrets map[string]map[string][]byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", c.image, strings.Join(c.args, "\n"), strings.Join(c.env, "\n"))
	ms := slices.Clone(c.mounts)
	sort.Slice(ms, func(i, j int) bool { return ms[i].path() < ms[j].path() })
	for _, m := range ms {
		b := secrets[m.secret][m.key]
		fmt.Fprintf(h, "%s %d\n", m.path(), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// deployment is a component's Deployment.
func deployment(tenant string, c component, inputs string) *appsv1.Deployment {
	labels := Labels(tenant, c.name)
	podLabels := map[string]string{
		"app.kubernetes.io/name":       DeploymentName(c.name),
		"app.kubernetes.io/instance":   tenant,
		"app.kubernetes.io/part-of":    "kplex",
		"app.kubernetes.io/managed-by": "kplex-operator",
	}
	for k, v := range labels {
		podLabels[k] = v
	}
	var env []corev1.EnvVar
	for _, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	env = append(env, corev1.EnvVar{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}})
	var items []corev1.VolumeProjection
	bySecret := map[string][]corev1.KeyToPath{}
	var order []string
	for _, m := range c.mounts {
		if _, ok := bySecret[m.secret]; !ok {
			order = append(order, m.secret)
		}
		bySecret[m.secret] = append(bySecret[m.secret], corev1.KeyToPath{Key: m.key, Path: m.key})
	}
	for _, s := range order {
		items = append(items, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: s}, Items: bySecret[s]}})
	}
	probe := func(period, failures int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: c.probePath, Port: intstr.FromInt32(c.port), Scheme: corev1.URISchemeHTTPS}},
			PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 5}
	}
	live := probe(10, 6)
	live.HTTPGet.Path = "/livez"
	if c.name != runtime.APIServer {
		live.HTTPGet.Path = "/healthz"
	}
	replicas := c.size.ReplicasOr1()
	maxUnavailable, maxSurge := intstr.FromInt32(0), intstr.FromInt32(1)
	no, yes, mode := false, true, int32(0o400)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: DeploymentName(c.name), Namespace: naming.HostNamespace(tenant), Labels: podLabels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			// A new replica serves before an old one goes.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: map[string]string{AnnotationInputs: inputs}},
				Spec: corev1.PodSpec{
					// Control planes never talk to the host API.
					AutomountServiceAccountToken: &no,
					EnableServiceLinks:           &no,
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: ptr(int64(65532)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Affinity: spread(labels),
					Containers: []corev1.Container{{
						Name: c.name, Image: c.image, ImagePullPolicy: c.pullPolicy,
						Command: []string{"kplex-" + c.name}, Args: c.args, Env: env,
						Ports:          []corev1.ContainerPort{{Name: "https", ContainerPort: c.port, Protocol: corev1.ProtocolTCP}},
						Resources:      c.size.Resources,
						ReadinessProbe: probe(2, 3),
						LivenessProbe:  live,
						StartupProbe:   &corev1.Probe{ProbeHandler: live.ProbeHandler, PeriodSeconds: 2, FailureThreshold: 60, TimeoutSeconds: 5},
						VolumeMounts: []corev1.VolumeMount{{Name: "pki", MountPath: mountDir, ReadOnly: true},
							{Name: "tmp", MountPath: "/tmp"}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
					Volumes: []corev1.Volume{
						{Name: "pki", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: items, DefaultMode: &mode}}},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
				},
			},
		},
	}
	return d
}

// spread prefers replicas of a component on different nodes.
func spread(labels map[string]string) *corev1.Affinity {
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, TopologyKey: corev1.LabelHostname}}}}}
}

// pdb lets voluntary disruptions (node drains) take one replica at a
// time; a single replica may still be evicted, so drains never block.
func pdb(tenant, component string) *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: DeploymentName(component), Namespace: naming.HostNamespace(tenant), Labels: Labels(tenant, component)},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &one, Selector: &metav1.LabelSelector{MatchLabels: Labels(tenant, component)}},
	}
}

// service is the apiserver's Service.
func service(tenant string, typ corev1.ServiceType) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: naming.HostNamespace(tenant), Labels: Labels(tenant, runtime.APIServer)},
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: Labels(tenant, runtime.APIServer),
			Ports: []corev1.ServicePort{{Name: "https", Port: servicePort, TargetPort: intstr.FromString("https"),
				Protocol: corev1.ProtocolTCP}},
		},
	}
}

func ptr[T any](v T) *T { return &v }
