package naming

import "strings"

// Domain is kplex's label and annotation domain. Keys in it (or any of its
// subdomains) are written by kplex only.
const Domain = "kplex.dev"

// Keys kplex writes on host objects.
const (
	// LabelManaged marks every host object kplex created (the relay's
	// watch selector).
	LabelManaged = Domain + "/managed"
	// LabelTenant is the owning tenant, for selecting a tenant's objects.
	LabelTenant = Domain + "/tenant"
	// LabelComponent marks a tenant's control-plane objects on the host
	// (kubernetes runtime): apiserver, controller-manager, scheduler. They
	// carry LabelTenant but never LabelManaged, so the syncer (relay,
	// patrol) and pause never take them for synced tenant objects.
	LabelComponent = Domain + "/component"
	// LabelExportedBy marks a host Service (and its Endpoints) that
	// exports a tenant's Service into a host namespace: the value is the
	// tenant. Never LabelManaged: they live outside the tenant's host
	// namespace, and only the tenant's shard and its deletion touch them.
	LabelExportedBy = Domain + "/exported-by"
	// LabelImported marks a tenant Service (and its Endpoints) that kplex
	// writes from a host Service (an import); AnnotationImportOf names
	// that host Service ("<namespace>/<name>").
	LabelImported      = Domain + "/imported"
	AnnotationImportOf = Domain + "/import-of"
	// LabelAcceptsExports and LabelAllowsImports ("true") are a host
	// namespace's consent to receive tenants' service exports, and to have
	// its Services imported by tenants (kplex-operator
	// --networking-consent=labels).
	LabelAcceptsExports = Domain + "/accept-exports"
	LabelAllowsImports  = Domain + "/allow-imports"
	// AnnotationNamespace and AnnotationName are the virtual identity.
	AnnotationNamespace = Domain + "/namespace"
	AnnotationName      = Domain + "/name"
	// AnnotationTenant repeats the tenant in annotations, so the identity
	// is complete in one place.
	AnnotationTenant = Domain + "/tenant"
	// LabelNamespace is the virtual namespace as a label on host pods, so
	// translated selectors never match pods of another virtual namespace.
	LabelNamespace = Domain + "/namespace"
	// AnnotationUID is the UID of the virtual object a host object was made
	// from: a host object left by an earlier incarnation of a name is
	// recognised and replaced.
	AnnotationUID = Domain + "/uid"
	// AnnotationContentHash is a hash of the virtual content a host
	// ConfigMap or Secret was written from (the relay does not carry data).
	AnnotationContentHash = Domain + "/content-hash"
	// AnnotationObservedHash is set by the relay, only on the copy it
	// publishes (never on a host object): the content hash of what the host
	// holds, compared with AnnotationContentHash to find drift.
	AnnotationObservedHash = Domain + "/observed-hash"
	// LabelRole tells kplex-made helper objects apart from translated
	// tenant objects (e.g. RolePodToken for a pod's service-account token).
	LabelRole = Domain + "/role"
	// AnnotationServiceAccount is the virtual pod's service account, for
	// the downward API (the host pod runs as the host's default).
	AnnotationServiceAccount = Domain + "/service-account"
	// AnnotationTokenExpiry is when a pod token Secret's token expires
	// (RFC 3339).
	AnnotationTokenExpiry = Domain + "/token-expiry"
)

// Roles of kplex-made helper objects.
const RolePodToken = "pod-token"

// IsKplexKey reports whether a label or annotation key is in kplex's
// domain: "kplex.dev/x" or "<sub>.kplex.dev/x".
func IsKplexKey(key string) bool {
	prefix, _, found := strings.Cut(key, "/")
	if !found {
		return false
	}
	prefix = strings.ToLower(prefix)
	return prefix == Domain || strings.HasSuffix(prefix, "."+Domain)
}

// TenantMetadata returns a copy of a tenant's labels or annotations that
// is safe to copy to the host: every key in kplex's domain is dropped, so
// a tenant can never forge the identity of a host object.
func TenantMetadata(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if !IsKplexKey(k) {
			out[k] = v
		}
	}
	return out
}

// HostLabels are the tenant's labels made safe, plus kplex's own.
func HostLabels(tenant string, virtual map[string]string) map[string]string {
	out := TenantMetadata(virtual)
	if out == nil {
		out = map[string]string{}
	}
	out[LabelManaged] = "true"
	out[LabelTenant] = tenant
	return out
}

// HostAnnotations are the tenant's annotations made safe, plus the virtual
// identity.
func HostAnnotations(id Identity, virtual map[string]string) map[string]string {
	out := TenantMetadata(virtual)
	if out == nil {
		out = map[string]string{}
	}
	out[AnnotationTenant] = id.Tenant
	out[AnnotationNamespace] = id.Namespace
	out[AnnotationName] = id.Name
	return out
}

// IdentityOf reads the virtual identity kplex recorded on a host object.
// It trusts only objects carrying kplex's managed label and a complete
// identity; the caller must also check the object is in
// HostNamespace(tenant) (annotations on objects a tenant cannot write).
func IdentityOf(labels, annotations map[string]string) (Identity, bool) {
	if labels[LabelManaged] != "true" {
		return Identity{}, false
	}
	id := Identity{Tenant: annotations[AnnotationTenant], Namespace: annotations[AnnotationNamespace], Name: annotations[AnnotationName]}
	if id.Tenant == "" || id.Name == "" || labels[LabelTenant] != id.Tenant {
		return Identity{}, false
	}
	return id, true
}
