package translate

import (
	corev1 "k8s.io/api/core/v1"

	"kplex.dev/api/naming"
)

// ConfigMap returns the host copy of a virtual ConfigMap, carrying a hash
// of its content (the relay publishes metadata only, never data).
func (t Tenant) ConfigMap(v *corev1.ConfigMap) *corev1.ConfigMap {
	h := &corev1.ConfigMap{ObjectMeta: t.HostMeta(v.ObjectMeta), Data: v.Data, BinaryData: v.BinaryData, Immutable: v.Immutable}
	h.Annotations[naming.AnnotationContentHash] = HashConfigMap(h)
	return h
}

// Secret returns the host copy of a virtual Secret. Service-account token
// Secrets become Opaque: the host's token controller would otherwise
// delete them (their ServiceAccount is virtual).
func (t Tenant) Secret(v *corev1.Secret) *corev1.Secret {
	typ := v.Type
	if typ == corev1.SecretTypeServiceAccountToken {
		typ = corev1.SecretTypeOpaque
	}
	h := &corev1.Secret{ObjectMeta: t.HostMeta(v.ObjectMeta), Data: v.Data, Type: typ, Immutable: v.Immutable}
	h.Annotations[naming.AnnotationContentHash] = HashSecret(h)
	return h
}

// Endpoints returns the host copy of the Endpoints of a selector-less
// virtual Service. Target references name virtual pods and are dropped.
func (t Tenant) Endpoints(v *corev1.Endpoints) *corev1.Endpoints {
	h := &corev1.Endpoints{ObjectMeta: t.HostMeta(v.ObjectMeta), Subsets: withoutRefs(v.Subsets)}
	delete(h.Labels, "endpointslice.kubernetes.io/skip-mirror")
	h.Annotations[naming.AnnotationContentHash] = HashEndpoints(h.Subsets)
	return h
}

// withoutRefs copies Endpoints subsets without their addresses' pod and
// node references, which name objects of the other cluster.
func withoutRefs(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	out := (&corev1.Endpoints{Subsets: subsets}).DeepCopy().Subsets
	for s := range out {
		for _, as := range [][]corev1.EndpointAddress{out[s].Addresses, out[s].NotReadyAddresses} {
			for a := range as {
				as[a].TargetRef, as[a].NodeName = nil, nil
			}
		}
	}
	return out
}

func endpointsKey(subsets []corev1.EndpointSubset) string {
	b, _ := (&corev1.Endpoints{Subsets: subsets}).Marshal()
	return string(b)
}

// ContentHash is the content hash kplex recorded on a host object.
func ContentHash(annotations map[string]string) string {
	return annotations[naming.AnnotationContentHash]
}

// HashConfigMap, HashSecret and HashEndpoints hash what a host copy holds.
// The shard records the hash of what it wrote (AnnotationContentHash); the
// relay publishes the hash of what the host holds (AnnotationObservedHash),
// so a change made on the host behind kplex's back shows without the
// relay carrying any data.
func HashConfigMap(c *corev1.ConfigMap) string { return hashData(c.Data, c.BinaryData) }

// HashSecret hashes a Secret's data and type.
func HashSecret(s *corev1.Secret) string { return hashData(nil, s.Data, string(s.Type)) }

// HashEndpoints hashes Endpoints subsets.
func HashEndpoints(subsets []corev1.EndpointSubset) string {
	return hashData(nil, nil, endpointsKey(subsets))
}

// ObservedHash is the hash of a host object's content as the relay saw
// it ("" when not reported).
func ObservedHash(annotations map[string]string) string {
	return annotations[naming.AnnotationObservedHash]
}
