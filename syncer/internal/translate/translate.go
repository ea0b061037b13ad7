// Package translate turns a tenant's (virtual) objects into the host
// objects that run them, and host state back into virtual status. It is
// pure: no clients, no caches, so every rule is a table test.
//
// The rules (see api/naming for the name and label contract):
//   - a host object's name is naming.HostName(virtual namespace, name), in
//     the tenant's host namespace; references to other objects (ConfigMaps,
//     Secrets, claims, subdomains) are translated the same way;
//   - tenant labels and annotations are copied without any kplex.dev key,
//     then kplex's identity is added, so a tenant can never forge one;
//   - selectors gain the tenant and virtual-namespace labels, so they never
//     match pods of another virtual namespace or tenant.
package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kplex.dev/api/naming"
)

// Tenant is what translation needs to know about the tenant.
type Tenant struct {
	Name          string
	HostNamespace string
	// APIHost and APIPort are where host pods reach the tenant API server
	// (KUBERNETES_SERVICE_HOST/PORT).
	APIHost string
	APIPort int
	// NodeSelector and Tolerations place every host pod on the tenant's
	// dedicated nodes (empty: shared nodes).
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
}

// NewTenant returns the translation context of a tenant.
func NewTenant(name, apiHost string, apiPort int) Tenant {
	return Tenant{Name: name, HostNamespace: naming.HostNamespace(name), APIHost: apiHost, APIPort: apiPort}
}

// HostName translates a virtual (namespace, name) to its host name.
func (t Tenant) HostName(ns, name string) string { return naming.HostName(ns, name) }

// HostMeta is the metadata of the host object made from a virtual object.
func (t Tenant) HostMeta(v metav1.ObjectMeta) metav1.ObjectMeta {
	id := naming.Identity{Tenant: t.Name, Namespace: v.Namespace, Name: v.Name}
	ann := naming.HostAnnotations(id, v.Annotations)
	ann[naming.AnnotationUID] = string(v.UID)
	// Annotations the host would act on for the tenant are not copied:
	// they were written for the tenant's cluster.
	delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
	labels := naming.HostLabels(t.Name, v.Labels)
	if v.Namespace != "" {
		labels[naming.LabelNamespace] = v.Namespace
	}
	return metav1.ObjectMeta{
		Name:        t.HostName(v.Namespace, v.Name),
		Namespace:   t.HostNamespace,
		Labels:      labels,
		Annotations: ann,
	}
}

// Selector translates a virtual label selector (map form) of namespace ns
// into the host selector: kplex keys dropped, tenant and namespace added.
func (t Tenant) Selector(ns string, sel map[string]string) map[string]string {
	out := naming.TenantMetadata(sel)
	if out == nil {
		out = map[string]string{}
	}
	out[naming.LabelTenant] = t.Name
	out[naming.LabelNamespace] = ns
	return out
}

// VirtualUID is the UID of the virtual object a host object was made from.
func VirtualUID(host metav1.Object) types.UID {
	return types.UID(host.GetAnnotations()[naming.AnnotationUID])
}

// hashData hashes string and byte maps in key order.
func hashData(str map[string]string, bin map[string][]byte, extra ...string) string {
	h := sha256.New()
	keys := make([]string, 0, len(str)+len(bin))
	for k := range str {
		keys = append(keys, "s"+k)
	}
	for k := range bin {
		keys = append(keys, "b"+k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		if k[0] == 's' {
			h.Write([]byte(str[k[1:]]))
		} else {
			h.Write(bin[k[1:]])
		}
		h.Write([]byte{0})
	}
	for _, e := range extra {
		h.Write([]byte(e))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
