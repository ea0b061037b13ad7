package controller

import (
	"reflect"
	"slices"
	"testing"

	"kplex.dev/api/naming"
	apiregistry "kplex.dev/api/registry"
	"kplex.dev/api/v1alpha1"
)

func TestServiceMappings(t *testing.T) {
	ref := func(ns, name string) v1alpha1.ServiceRef { return v1alpha1.ServiceRef{Namespace: ns, Name: name} }
	reg := func(ns, name string) apiregistry.ServiceRef { return apiregistry.ServiceRef{Namespace: ns, Name: name} }
	tests := []struct {
		name    string
		in      v1alpha1.NetworkingSpec
		exports []apiregistry.ServiceExport
		imports []apiregistry.ServiceImport
	}{
		{name: "none"},
		{name: "export", in: v1alpha1.NetworkingSpec{ExportServices: []v1alpha1.ServiceMapping{{From: ref("default", "web"), To: ref("shared", "a-web")}}},
			exports: []apiregistry.ServiceExport{{From: reg("default", "web"), To: reg("shared", "a-web")}}},
		{name: "host import", in: v1alpha1.NetworkingSpec{ImportHostServices: []v1alpha1.ServiceMapping{{From: ref("db", "pg"), To: ref("default", "pg")}}},
			imports: []apiregistry.ServiceImport{{From: reg("db", "pg"), To: reg("default", "pg")}}},
		{name: "another tenant's service comes from its host copy",
			in:      v1alpha1.NetworkingSpec{TenantServices: []v1alpha1.TenantServiceMapping{{Tenant: "billing", From: ref("api", "invoices"), To: ref("default", "invoices")}}},
			imports: []apiregistry.ServiceImport{{From: reg("kplex-billing", naming.HostName("api", "invoices")), To: reg("default", "invoices")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exports, imports := serviceMappings(tt.in)
			if !reflect.DeepEqual(exports, tt.exports) || !reflect.DeepEqual(imports, tt.imports) {
				t.Errorf("got exports %+v imports %+v\nwant %+v %+v", exports, imports, tt.exports, tt.imports)
			}
		})
	}
}

func TestNetworkingProblems(t *testing.T) {
	ref := func(ns, name string) v1alpha1.ServiceRef { return v1alpha1.ServiceRef{Namespace: ns, Name: name} }
	m := func(from, to v1alpha1.ServiceRef) v1alpha1.ServiceMapping {
		return v1alpha1.ServiceMapping{From: from, To: to}
	}
	tests := []struct {
		name string
		in   v1alpha1.NetworkingSpec
		want string // "" for none
	}{
		{"fine", v1alpha1.NetworkingSpec{ExportServices: []v1alpha1.ServiceMapping{m(ref("default", "web"), ref("shared", "a-web"))},
			ImportHostServices: []v1alpha1.ServiceMapping{m(ref("db", "pg"), ref("default", "pg"))}}, ""},
		{"export into a tenant namespace", v1alpha1.NetworkingSpec{ExportServices: []v1alpha1.ServiceMapping{m(ref("default", "web"), ref("kplex-b", "w"))}},
			"spec.networking.exportServices[0].to.namespace: kplex-b is a tenant's host namespace"},
		{"two exports onto one service", v1alpha1.NetworkingSpec{ExportServices: []v1alpha1.ServiceMapping{m(ref("default", "web"), ref("s", "w")), m(ref("default", "db"), ref("s", "w"))}},
			"spec.networking.exportServices[1].to: the same Service as spec.networking.exportServices[0]"},
		{"a tenant's host objects imported as a host service", v1alpha1.NetworkingSpec{ImportHostServices: []v1alpha1.ServiceMapping{m(ref("kplex-b", "x"), ref("default", "x"))}},
			"spec.networking.importHostServices[0].from.namespace: kplex-b is a tenant's host namespace (use tenantServices)"},
		{"host and tenant import onto one service", v1alpha1.NetworkingSpec{ImportHostServices: []v1alpha1.ServiceMapping{m(ref("db", "pg"), ref("default", "pg"))},
			TenantServices: []v1alpha1.TenantServiceMapping{{Tenant: "b", From: ref("default", "pg"), To: ref("default", "pg")}}},
			"spec.networking.tenantServices[0].to: the same Service as spec.networking.importHostServices[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := networkingProblems(tt.in)
			if (tt.want == "" && len(got) != 0) || (tt.want != "" && (len(got) != 1 || got[0] != tt.want)) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConsentProblems(t *testing.T) {
	ref := func(ns, name string) v1alpha1.ServiceRef { return v1alpha1.ServiceRef{Namespace: ns, Name: name} }
	m := func(from, to v1alpha1.ServiceRef) v1alpha1.ServiceMapping {
		return v1alpha1.ServiceMapping{From: from, To: to}
	}
	namespaces := map[string]map[string]string{
		"shared": {naming.LabelAcceptsExports: "true"},
		"db":     {naming.LabelAllowsImports: "true"},
		"closed": {},
		"both":   {naming.LabelAcceptsExports: "true", naming.LabelAllowsImports: "false"},
	}
	labelsOf := func(ns string) (map[string]string, bool, error) {
		l, ok := namespaces[ns]
		return l, ok, nil
	}
	tests := []struct {
		name string
		in   v1alpha1.NetworkingSpec
		want []string
	}{
		{"consented", v1alpha1.NetworkingSpec{ExportServices: []v1alpha1.ServiceMapping{m(ref("default", "web"), ref("shared", "a-web"))},
			ImportHostServices: []v1alpha1.ServiceMapping{m(ref("db", "pg"), ref("default", "pg"))}}, nil},
		{"tenant services need none", v1alpha1.NetworkingSpec{TenantServices: []v1alpha1.TenantServiceMapping{{Tenant: "b", From: ref("closed", "x"), To: ref("default", "x")}}}, nil},
		{"export into a closed namespace, import from an export-only one", v1alpha1.NetworkingSpec{
			ExportServices:     []v1alpha1.ServiceMapping{m(ref("default", "web"), ref("closed", "w"))},
			ImportHostServices: []v1alpha1.ServiceMapping{m(ref("both", "pg"), ref("default", "pg"))}},
			[]string{
				"spec.networking.exportServices[0].to.namespace: host namespace closed does not accept exports (an administrator labels it kplex.dev/accept-exports=true)",
				"spec.networking.importHostServices[0].from.namespace: host namespace both does not allow imports (an administrator labels it kplex.dev/allow-imports=true)",
			}},
		{"missing namespace", v1alpha1.NetworkingSpec{ExportServices: []v1alpha1.ServiceMapping{m(ref("default", "web"), ref("nope", "w"))}},
			[]string{"spec.networking.exportServices[0].to.namespace: host namespace nope does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := consentProblems(tt.in, labelsOf)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
