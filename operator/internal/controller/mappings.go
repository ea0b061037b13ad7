package controller

import (
	"fmt"

	"kplex.dev/api/naming"
	apiregistry "kplex.dev/api/registry"
	"kplex.dev/api/v1alpha1"
)

// networkingProblems are the spec.networking entries the syncer would
// refuse (and with them the whole registration), named by field: exports
// into a tenant's host namespace, imports of a tenant's host objects other
// than through tenantServices, and two mappings onto one Service.
func networkingProblems(n v1alpha1.NetworkingSpec) []string {
	var out []string
	exported := map[v1alpha1.ServiceRef]string{}
	for i, e := range n.ExportServices {
		at := fmt.Sprintf("spec.networking.exportServices[%d]", i)
		if _, ok := naming.TenantOfHostNamespace(e.To.Namespace); ok {
			out = append(out, at+".to.namespace: "+e.To.Namespace+" is a tenant's host namespace")
		}
		if prev, ok := exported[e.To]; ok {
			out = append(out, at+".to: the same Service as "+prev)
		}
		exported[e.To] = at
	}
	imported := map[v1alpha1.ServiceRef]string{}
	to := func(at string, r v1alpha1.ServiceRef) {
		if prev, ok := imported[r]; ok {
			out = append(out, at+".to: the same Service as "+prev)
		}
		imported[r] = at
	}
	for i, m := range n.ImportHostServices {
		at := fmt.Sprintf("spec.networking.importHostServices[%d]", i)
		if _, ok := naming.TenantOfHostNamespace(m.From.Namespace); ok {
			out = append(out, at+".from.namespace: "+m.From.Namespace+" is a tenant's host namespace (use tenantServices)")
		}
		to(at, m.To)
	}
	for i, m := range n.TenantServices {
		to(fmt.Sprintf("spec.networking.tenantServices[%d]", i), m.To)
	}
	return out
}

// serviceMappings translates spec.networking into the registration's
// exports and imports. Another tenant's Service is imported from its host
// copy (in that tenant's host namespace, under its host name).
func serviceMappings(n v1alpha1.NetworkingSpec) ([]apiregistry.ServiceExport, []apiregistry.ServiceImport) {
	ref := func(r v1alpha1.ServiceRef) apiregistry.ServiceRef {
		return apiregistry.ServiceRef{Namespace: r.Namespace, Name: r.Name}
	}
	var exports []apiregistry.ServiceExport
	for _, e := range n.ExportServices {
		exports = append(exports, apiregistry.ServiceExport{From: ref(e.From), To: ref(e.To)})
	}
	var imports []apiregistry.ServiceImport
	for _, i := range n.ImportHostServices {
		imports = append(imports, apiregistry.ServiceImport{From: ref(i.From), To: ref(i.To)})
	}
	for _, m := range n.TenantServices {
		from := apiregistry.ServiceRef{Namespace: naming.HostNamespace(m.Tenant), Name: naming.HostName(m.From.Namespace, m.From.Name)}
		imports = append(imports, apiregistry.ServiceImport{From: from, To: ref(m.To)})
	}
	return exports, imports
}
