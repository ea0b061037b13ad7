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

// consentProblems are the host namespaces spec.networking reaches that
// have not consented (naming.LabelAcceptsExports for exports,
// naming.LabelAllowsImports for host imports), named by field. labelsOf
// returns a namespace's labels, or false when it does not exist.
func consentProblems(n v1alpha1.NetworkingSpec, labelsOf func(ns string) (map[string]string, bool, error)) ([]string, error) {
	var out []string
	check := func(at, ns, label, what string) error {
		l, ok, err := labelsOf(ns)
		switch {
		case err != nil:
			return err
		case !ok:
			out = append(out, fmt.Sprintf("%s: host namespace %s does not exist", at, ns))
		case l[label] != "true":
			out = append(out, fmt.Sprintf("%s: host namespace %s does not %s (an administrator labels it %s=true)", at, ns, what, label))
		}
		return nil
	}
	for i, e := range n.ExportServices {
		if err := check(fmt.Sprintf("spec.networking.exportServices[%d].to.namespace", i), e.To.Namespace, naming.LabelAcceptsExports, "accept exports"); err != nil {
			return nil, err
		}
	}
	for i, m := range n.ImportHostServices {
		if err := check(fmt.Sprintf("spec.networking.importHostServices[%d].from.namespace", i), m.From.Namespace, naming.LabelAllowsImports, "allow imports"); err != nil {
			return nil, err
		}
	}
	return out, nil
}
