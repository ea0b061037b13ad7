package relay

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"kplex.dev/api/bus"
	"kplex.dev/api/naming"
	"kplex.dev/syncer/internal/hostcache"
	"kplex.dev/syncer/internal/translate"
)

// busKey is the subject of a host object: its tenant comes from its host
// namespace, its virtual identity from kplex's annotations, which must
// agree. Nodes and classes are shared.
func busKey(resource string, m metav1.Object) (bus.Key, bool) {
	if hostcache.Shared(resource) {
		return bus.Key{Tenant: bus.SharedTenant, Resource: resource, Name: m.GetName()}, true
	}
	tenant, ok := naming.TenantOfHostNamespace(m.GetNamespace())
	if !ok {
		return bus.Key{}, false
	}
	id, ok := naming.IdentityOf(m.GetLabels(), m.GetAnnotations())
	if !ok || id.Tenant != tenant {
		return bus.Key{}, false
	}
	if resource == hostcache.Secrets && m.GetLabels()[naming.LabelRole] == naming.RolePodToken {
		resource = hostcache.PodTokens
	}
	return bus.Key{Tenant: tenant, Resource: resource, Namespace: id.Namespace, Name: id.Name}, true
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("relay: %T has no object metadata", obj)
	}
	return m, nil
}

func encode(obj runtime.Object) json.RawMessage {
	if obj == nil {
		return json.RawMessage("null")
	}
	b, err := json.Marshal(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return json.RawMessage("null")
	}
	return b
}

// trim drops what the relay never publishes: managed fields, the data of
// ConfigMaps, Secrets and Endpoints (replaced by the hash of what the host
// holds, AnnotationObservedHash), node images.
func trim(o any) (any, error) {
	if m, ok := o.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	meta := func(kind string, m metav1.ObjectMeta, hash string) *metav1.PartialObjectMetadata {
		apiVersion := map[string]string{"NetworkPolicy": "networking.k8s.io/v1", "PodDisruptionBudget": "policy/v1"}[kind]
		if apiVersion == "" {
			apiVersion = "v1"
		}
		ann := make(map[string]string, len(m.Annotations)+1)
		for k, v := range m.Annotations {
			ann[k] = v
		}
		ann[naming.AnnotationObservedHash] = hash
		m.Annotations = ann
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: kind, APIVersion: apiVersion}, ObjectMeta: m}
	}
	switch v := o.(type) {
	case *corev1.Secret:
		return meta("Secret", v.ObjectMeta, translate.HashSecret(v)), nil
	case *corev1.ConfigMap:
		return meta("ConfigMap", v.ObjectMeta, translate.HashConfigMap(v)), nil
	case *corev1.Endpoints:
		return meta("Endpoints", v.ObjectMeta, translate.HashEndpoints(v.Subsets)), nil
	case *networkingv1.NetworkPolicy:
		return meta("NetworkPolicy", v.ObjectMeta, translate.HashSpec(v.Spec)), nil
	case *policyv1.PodDisruptionBudget:
		return meta("PodDisruptionBudget", v.ObjectMeta, translate.HashSpec(v.Spec)), nil
	case *corev1.Node:
		v.Status.Images = nil
	case *networkingv1.Ingress:
		ann := make(map[string]string, len(v.Annotations)+1)
		for k, val := range v.Annotations {
			ann[k] = val
		}
		ann[naming.AnnotationObservedHash] = translate.HashSpec(v.Spec)
		v.Annotations = ann
	}
	return o, nil
}
