package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"kplex.dev/api/crd"
	"kplex.dev/cli/localenv"
	"kplex.dev/e2e/framework"
)

var vcGVR = schema.GroupVersionResource{Group: "kplex.dev", Version: "v1alpha1", Resource: "virtualclusters"}

// TestVirtualClusterCRD installs the generated CRD on a real host API
// server and checks that bad specs are refused at admission with a message
// naming the field, and that defaults are filled in.
func TestVirtualClusterCRD(t *testing.T) {
	env := framework.Start(t, func(o *localenv.Options) { o.VClusters = []string{} })
	ctx := context.Background()
	cfg := framework.RESTConfig(t, env.Layout.HostKubeconfig())
	installCRD(t, apiextensions.NewForConfigOrDie(cfg))
	vcs := dynamic.NewForConfigOrDie(cfg).Resource(vcGVR).Namespace("default")

	created, err := vcs.Create(ctx, vc("good", map[string]any{}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("valid VirtualCluster refused: %v", err)
	}
	for path, want := range map[string]string{"spec.version": "v1.37", "spec.datastore.backend": "sqlite", "spec.sync.podSecurity": "baseline"} {
		got, _, _ := unstructured.NestedString(created.Object, strings.Split(path, ".")...)
		if got != want {
			t.Errorf("default %s = %q, want %q", path, got, want)
		}
	}

	refused := []struct {
		name string
		obj  *unstructured.Unstructured
		want string
	}{
		{"name not starting with a letter", vc("9lives", map[string]any{}), "metadata.name must be a DNS label"},
		{"name too long", vc(strings.Repeat("a", 41), map[string]any{}), "at most 40 characters"},
		{"unknown version", vc("v", map[string]any{"version": "v1.30"}), "spec.version"},
		{"negative quota", vc("q", map[string]any{"datastore": map[string]any{"quota": map[string]any{"maxKeys": int64(-1)}}}), "spec.datastore.quota.maxKeys"},
		{"negative replicas", vc("r", map[string]any{"controlPlane": map[string]any{"apiServer": map[string]any{"replicas": int64(-1)}}}), "spec.controlPlane.apiServer.replicas"},
		{"unknown pod security level", vc("p", map[string]any{"sync": map[string]any{"podSecurity": "privileged"}}), "spec.sync.podSecurity"},
		{"dedicated and private nodes", vc("d", map[string]any{"tenancy": map[string]any{
			"dedicatedNodes": map[string]any{"nodeSelector": map[string]any{"pool": "a"}},
			"privateNodes":   map[string]any{"kubeconfigSecret": "other"},
		}}), "choose dedicatedNodes or privateNodes, not both"},
		{"export into a tenant's host namespace", vc("e", map[string]any{"networking": map[string]any{"exportServices": []any{
			svcMapping("default", "web", "kplex-other", "web"),
		}}}), "cannot receive exports"},
		{"two exports onto one service", vc("e2", map[string]any{"networking": map[string]any{"exportServices": []any{
			svcMapping("default", "web", "shared", "w"), svcMapping("default", "db", "shared", "w"),
		}}}), "two exports onto the same Service"},
		{"host import from a tenant's host namespace", vc("i", map[string]any{"networking": map[string]any{"importHostServices": []any{
			svcMapping("kplex-other", "web", "default", "web"),
		}}}), "use tenantServices"},
		{"private nodes and tenant services", vc("pt", map[string]any{
			"tenancy":    map[string]any{"privateNodes": map[string]any{"kubeconfigSecret": "other"}},
			"networking": map[string]any{"tenantServices": []any{map[string]any{"tenant": "a", "from": map[string]any{"namespace": "default", "name": "web"}, "to": map[string]any{"namespace": "default", "name": "web"}}}},
		}), "networking.tenantServices: not available with tenancy.privateNodes"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := vcs.Create(ctx, tt.obj, metav1.CreateOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it refused naming %q", err, tt.want)
			}
		})
	}

	for _, tt := range []struct {
		name  string
		value any
		path  []string
		want  string
	}{
		{"datastore backend is immutable", "etcd", []string{"datastore", "backend"}, "datastore.backend is immutable"},
		{"private nodes cannot be added", map[string]any{"kubeconfigSecret": "other"}, []string{"tenancy", "privateNodes"}, "tenancy.privateNodes cannot be added or removed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The operator reconciles "good" meanwhile (finalizer, status):
			// change the latest version, again after a conflict.
			var err error
			for range 10 {
				latest, gerr := vcs.Get(ctx, created.GetName(), metav1.GetOptions{})
				if gerr != nil {
					t.Fatal(gerr)
				}
				if err := unstructured.SetNestedField(latest.Object, tt.value, append([]string{"spec"}, tt.path...)...); err != nil {
					t.Fatal(err)
				}
				if _, err = vcs.Update(ctx, latest, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want the change refused naming %q", err, tt.want)
			}
		})
	}
}

func vc(name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kplex.dev/v1alpha1", "kind": "VirtualCluster",
		"metadata": map[string]any{"name": name},
		"spec":     spec,
	}}
}

func installCRD(t *testing.T, c apiextensions.Interface) {
	t.Helper()
	var def apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(crd.VirtualClusters, &def); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// kplex-operator installs it at start; create it only if it has not yet.
	if _, err := c.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &def, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, "CRD established", func(ctx context.Context) error {
		got, err := c.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, def.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", got.Status.Conditions)
	}, nil)
}

func svcMapping(fromNS, from, toNS, to string) map[string]any {
	return map[string]any{"from": map[string]any{"namespace": fromNS, "name": from}, "to": map[string]any{"namespace": toNS, "name": to}}
}
