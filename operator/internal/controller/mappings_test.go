package controller

import (
	"reflect"
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
