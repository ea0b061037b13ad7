package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/api/naming"
	"kplex.dev/e2e/framework"
)

// testImportedClasses turns class import on for demo only (through the
// shard's registry, reloaded live): the host's StorageClass and
// IngressClass appear in demo, marked as kplex's, not in other, and go
// when the host's go.
func testImportedClasses(t *testing.T, env *framework.Env, demo, other, host kubernetes.Interface) {
	ctx := context.Background()
	reg := fmt.Sprintf("tenants:\n- name: demo\n  kubeconfig: %s\n  importStorageClasses: true\n  importIngressClasses: true\n- name: other\n  kubeconfig: %s\n", syncerKubeconfig(env, "demo"), syncerKubeconfig(env, "other"))
	if err := os.WriteFile(env.Layout.SyncerTenants(), []byte(reg), 0o644); err != nil {
		t.Fatal(err)
	}
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "e2e-fast"}, Provisioner: "example.com/fast", Parameters: map[string]string{"tier": "1"}}
	if _, err := host.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "e2e-nginx"}, Spec: networkingv1.IngressClassSpec{Controller: "example.com/ingress"}}
	if _, err := host.NetworkingV1().IngressClasses().Create(ctx, ic, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 45*time.Second, "host classes imported into demo", func(ctx context.Context) error {
		got, err := demo.StorageV1().StorageClasses().Get(ctx, "e2e-fast", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Provisioner != "example.com/fast" || got.Parameters["tier"] != "1" || got.Labels[naming.LabelManaged] != "true" {
			return fmt.Errorf("imported storage class %+v", got)
		}
		gi, err := demo.NetworkingV1().IngressClasses().Get(ctx, "e2e-nginx", metav1.GetOptions{})
		if err != nil || gi.Spec.Controller != "example.com/ingress" {
			return fmt.Errorf("imported ingress class: %v", err)
		}
		return nil
	}, nil)
	if _, err := other.StorageV1().StorageClasses().Get(ctx, "e2e-fast", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("other, which does not import, got the class: %v", err)
	}
	if err := host.StorageV1().StorageClasses().Delete(ctx, "e2e-fast", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, "a class gone from the host goes from demo", func(ctx context.Context) error {
		if _, err := demo.StorageV1().StorageClasses().Get(ctx, "e2e-fast", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	}, nil)
	_ = host.NetworkingV1().IngressClasses().Delete(ctx, "e2e-nginx", metav1.DeleteOptions{})
}
