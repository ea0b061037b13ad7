package translate

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"kplex.dev/api/naming"
)

// TokenSource is one service-account token a pod's projected volumes ask
// for; the syncer requests it from the TENANT API and stores it in the
// pod's token Secret under Key.
type TokenSource struct {
	Key               string
	Audience          string
	ExpirationSeconds int64
}

// TokenSecretName is the host Secret holding a host pod's tokens. The
// "-token" suffix cannot end a translated name (those end in a digit or a
// hash), so it never collides with a tenant Secret.
func TokenSecretName(hostPod string) string { return hostPod + "-token" }

// downward maps virtual identity fields to the host pod annotations that
// carry them (the host's own metadata.name is the translated name).
var downward = map[string]string{
	"metadata.name":           "metadata.annotations['" + naming.AnnotationName + "']",
	"metadata.namespace":      "metadata.annotations['" + naming.AnnotationNamespace + "']",
	"metadata.uid":            "metadata.annotations['" + naming.AnnotationUID + "']",
	"spec.serviceAccountName": "metadata.annotations['" + naming.AnnotationServiceAccount + "']",
}

// Pod returns the host pod that runs virtual pod v. services are the
// virtual Services of v's namespace, for service-link environment variables.
func (t Tenant) Pod(v *corev1.Pod, services []*corev1.Service) *corev1.Pod {
	ns := v.Namespace
	h := &corev1.Pod{ObjectMeta: t.HostMeta(v.ObjectMeta)}
	spec := *v.Spec.DeepCopy()
	if sa := v.Spec.ServiceAccountName; sa != "" {
		h.Annotations[naming.AnnotationServiceAccount] = sa
	}

	spec.ServiceAccountName = ""
	spec.DeprecatedServiceAccount = ""
	spec.AutomountServiceAccountToken = ptr.To(false)
	spec.SchedulerName = ""
	// Tenant priority classes do not exist on the host.
	spec.PriorityClassName = ""
	spec.Priority = nil
	spec.PreemptionPolicy = nil
	if spec.Hostname == "" && len(validation.IsDNS1123Label(v.Name)) == 0 {
		spec.Hostname = v.Name
	}
	if spec.Subdomain != "" {
		spec.Subdomain = t.HostName(ns, spec.Subdomain)
	}
	for i := range spec.ImagePullSecrets {
		spec.ImagePullSecrets[i].Name = t.HostName(ns, spec.ImagePullSecrets[i].Name)
	}
	for vi := range spec.Volumes {
		t.volume(ns, vi, &spec.Volumes[vi], TokenSecretName(h.Name))
	}
	links := true
	if v.Spec.EnableServiceLinks != nil {
		links = *v.Spec.EnableServiceLinks
	}
	spec.EnableServiceLinks = ptr.To(false)
	env := t.apiEnv()
	if links {
		env = append(serviceEnv(services), env...)
	}
	for i := range spec.InitContainers {
		t.container(ns, &spec.InitContainers[i], env)
	}
	for i := range spec.Containers {
		t.container(ns, &spec.Containers[i], env)
	}
	for i := range spec.EphemeralContainers {
		c := corev1.Container(spec.EphemeralContainers[i].EphemeralContainerCommon)
		t.container(ns, &c, env)
		spec.EphemeralContainers[i].EphemeralContainerCommon = corev1.EphemeralContainerCommon(c)
	}
	t.affinity(ns, spec.Affinity)
	for i := range spec.TopologySpreadConstraints {
		c := &spec.TopologySpreadConstraints[i]
		c.LabelSelector = t.labelSelector(c.LabelSelector, []string{ns})
	}
	t.place(&spec)
	h.Spec = spec
	return h
}

// place pins a host pod to the tenant's dedicated nodes: the tenant's
// selector keys are kept unless the placement sets them, and its
// tolerations are added. A pod the tenant bound to a node itself
// (spec.nodeName) keeps the selector too, so the host kubelet refuses it
// on a node outside the placement (NodeAffinity).
func (t Tenant) place(spec *corev1.PodSpec) {
	if len(t.NodeSelector) > 0 {
		if spec.NodeSelector == nil {
			spec.NodeSelector = map[string]string{}
		}
		for k, v := range t.NodeSelector {
			spec.NodeSelector[k] = v
		}
	}
	for _, tol := range t.Tolerations {
		if !slices.ContainsFunc(spec.Tolerations, func(x corev1.Toleration) bool { return x.MatchToleration(&tol) }) {
			spec.Tolerations = append(spec.Tolerations, tol)
		}
	}
}

// TokenSources lists the service-account tokens v's volumes project, in
// the order Pod maps them to Secret keys.
func TokenSources(v *corev1.Pod) []TokenSource {
	var out []TokenSource
	for vi, vol := range v.Spec.Volumes {
		if vol.Projected == nil {
			continue
		}
		for si, s := range vol.Projected.Sources {
			if s.ServiceAccountToken == nil {
				continue
			}
			exp := int64(3600)
			if s.ServiceAccountToken.ExpirationSeconds != nil {
				exp = *s.ServiceAccountToken.ExpirationSeconds
			}
			out = append(out, TokenSource{Key: tokenKey(vi, si), Audience: s.ServiceAccountToken.Audience, ExpirationSeconds: exp})
		}
	}
	return out
}

func tokenKey(vi, si int) string { return fmt.Sprintf("token-%d-%d", vi, si) }

func (t Tenant) volume(ns string, vi int, vol *corev1.Volume, tokenSecret string) {
	switch {
	case vol.ConfigMap != nil:
		vol.ConfigMap.Name = t.HostName(ns, vol.ConfigMap.Name)
	case vol.Secret != nil:
		vol.Secret.SecretName = t.HostName(ns, vol.Secret.SecretName)
	case vol.PersistentVolumeClaim != nil:
		vol.PersistentVolumeClaim.ClaimName = t.HostName(ns, vol.PersistentVolumeClaim.ClaimName)
	case vol.DownwardAPI != nil:
		for i := range vol.DownwardAPI.Items {
			rewriteFieldRef(vol.DownwardAPI.Items[i].FieldRef)
		}
	case vol.Projected != nil:
		for si := range vol.Projected.Sources {
			s := &vol.Projected.Sources[si]
			switch {
			case s.ConfigMap != nil:
				s.ConfigMap.Name = t.HostName(ns, s.ConfigMap.Name)
			case s.Secret != nil:
				s.Secret.Name = t.HostName(ns, s.Secret.Name)
			case s.DownwardAPI != nil:
				for i := range s.DownwardAPI.Items {
					rewriteFieldRef(s.DownwardAPI.Items[i].FieldRef)
				}
			case s.ServiceAccountToken != nil:
				path := s.ServiceAccountToken.Path
				*s = corev1.VolumeProjection{Secret: &corev1.SecretProjection{
					LocalObjectReference: corev1.LocalObjectReference{Name: tokenSecret},
					Items:                []corev1.KeyToPath{{Key: tokenKey(vi, si), Path: path}},
				}}
			}
		}
	}
}

func rewriteFieldRef(f *corev1.ObjectFieldSelector) {
	if f == nil {
		return
	}
	if p, ok := downward[f.FieldPath]; ok {
		f.FieldPath = p
	}
}

func (t Tenant) container(ns string, c *corev1.Container, extra []corev1.EnvVar) {
	for i := range c.Env {
		e := &c.Env[i]
		if e.ValueFrom == nil {
			continue
		}
		switch {
		case e.ValueFrom.ConfigMapKeyRef != nil:
			e.ValueFrom.ConfigMapKeyRef.Name = t.HostName(ns, e.ValueFrom.ConfigMapKeyRef.Name)
		case e.ValueFrom.SecretKeyRef != nil:
			e.ValueFrom.SecretKeyRef.Name = t.HostName(ns, e.ValueFrom.SecretKeyRef.Name)
		case e.ValueFrom.FieldRef != nil:
			rewriteFieldRef(e.ValueFrom.FieldRef)
		}
	}
	for i := range c.EnvFrom {
		e := &c.EnvFrom[i]
		if e.ConfigMapRef != nil {
			e.ConfigMapRef.Name = t.HostName(ns, e.ConfigMapRef.Name)
		}
		if e.SecretRef != nil {
			e.SecretRef.Name = t.HostName(ns, e.SecretRef.Name)
		}
	}
	// Generated variables come first; the container's own win, as with a
	// kubelet's service environment.
	own := map[string]bool{}
	for _, e := range c.Env {
		own[e.Name] = true
	}
	var env []corev1.EnvVar
	for _, e := range extra {
		if !own[e.Name] {
			env = append(env, e)
		}
	}
	c.Env = append(env, c.Env...)
}

// apiEnv points in-cluster clients at the tenant API server, overriding the
// host's own KUBERNETES_* variables.
func (t Tenant) apiEnv() []corev1.EnvVar {
	if t.APIHost == "" {
		return nil
	}
	port := strconv.Itoa(t.APIPort)
	url := "tcp://" + hostPort(t.APIHost, port)
	return []corev1.EnvVar{
		{Name: "KUBERNETES_SERVICE_HOST", Value: t.APIHost},
		{Name: "KUBERNETES_SERVICE_PORT", Value: port},
		{Name: "KUBERNETES_SERVICE_PORT_HTTPS", Value: port},
		{Name: "KUBERNETES_PORT", Value: url},
		{Name: "KUBERNETES_PORT_443_TCP", Value: url},
		{Name: "KUBERNETES_PORT_443_TCP_PROTO", Value: "tcp"},
		{Name: "KUBERNETES_PORT_443_TCP_PORT", Value: port},
		{Name: "KUBERNETES_PORT_443_TCP_ADDR", Value: t.APIHost},
	}
}

func (t Tenant) affinity(ns string, a *corev1.Affinity) {
	if a == nil {
		return
	}
	fix := func(terms []corev1.PodAffinityTerm) {
		for i := range terms {
			term := &terms[i]
			namespaces := term.Namespaces
			if len(namespaces) == 0 {
				namespaces = []string{ns}
			}
			// A namespace selector cannot be evaluated against virtual
			// namespaces on the host: it widens to every namespace of the
			// tenant (never beyond: the term stays in the host namespace).
			if term.NamespaceSelector != nil {
				namespaces = nil
			}
			term.LabelSelector = t.labelSelector(term.LabelSelector, namespaces)
			term.Namespaces = []string{t.HostNamespace}
			term.NamespaceSelector = nil
			term.MatchLabelKeys, term.MismatchLabelKeys = nil, nil
		}
	}
	fixWeighted := func(terms []corev1.WeightedPodAffinityTerm) {
		for i := range terms {
			one := []corev1.PodAffinityTerm{terms[i].PodAffinityTerm}
			fix(one)
			terms[i].PodAffinityTerm = one[0]
		}
	}
	if p := a.PodAffinity; p != nil {
		fix(p.RequiredDuringSchedulingIgnoredDuringExecution)
		fixWeighted(p.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	if p := a.PodAntiAffinity; p != nil {
		fix(p.RequiredDuringSchedulingIgnoredDuringExecution)
		fixWeighted(p.PreferredDuringSchedulingIgnoredDuringExecution)
	}
}

// labelSelector confines a pod label selector to the tenant's pods of the
// given virtual namespaces (nil: any of the tenant's namespaces).
func (t Tenant) labelSelector(s *metav1.LabelSelector, namespaces []string) *metav1.LabelSelector {
	if s == nil {
		return nil
	}
	out := &metav1.LabelSelector{MatchLabels: t.Selector("", s.MatchLabels)}
	delete(out.MatchLabels, naming.LabelNamespace)
	for _, r := range s.MatchExpressions {
		if !naming.IsKplexKey(r.Key) {
			out.MatchExpressions = append(out.MatchExpressions, r)
		}
	}
	if len(namespaces) > 0 {
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: naming.LabelNamespace, Operator: metav1.LabelSelectorOpIn, Values: namespaces,
		})
	}
	return out
}
