package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kplex.dev/api/naming"
	"kplex.dev/e2e/framework"
)

// testResourcesTurnedOff turns every optional resource off for demo
// (registry `resources: []`, reloaded live): demo's host NetworkPolicies,
// PodDisruptionBudgets and Ingresses go, its host claim (data) stays, and
// other's copies are untouched; turned back on, they return.
func testResourcesTurnedOff(t *testing.T, env *framework.Env, demo, host kubernetes.Interface) {
	ctx := context.Background()
	demoNS, otherNS := naming.HostNamespace("demo"), naming.HostNamespace("other")
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
	}}
	if _, err := demo.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hostClaim := naming.HostName("default", "kept")
	counts := func(ns string) (nps, pdbs, ings int, err error) {
		np, err := host.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, 0, 0, err
		}
		pdb, err := host.PolicyV1().PodDisruptionBudgets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, 0, 0, err
		}
		ing, err := host.NetworkingV1().Ingresses(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, 0, 0, err
		}
		return len(np.Items), len(pdb.Items), len(ing.Items), nil
	}
	describe := func() string {
		a, b, c, _ := counts(demoNS)
		d, e, f, _ := counts(otherNS)
		return fmt.Sprintf("host NetworkPolicies/PDBs/Ingresses: demo %d/%d/%d, other %d/%d/%d", a, b, c, d, e, f)
	}
	framework.Eventually(t, 30*time.Second, "demo's claim and earlier copies on the host", func(ctx context.Context) error {
		if _, err := host.CoreV1().PersistentVolumeClaims(demoNS).Get(ctx, hostClaim, metav1.GetOptions{}); err != nil {
			return err
		}
		if nps, pdbs, ings, err := counts(demoNS); err != nil || nps == 0 || pdbs == 0 || ings == 0 {
			return fmt.Errorf("want some of each (err %v)", err)
		}
		return nil
	}, describe)
	oNPs, oPDBs, oIngs, err := counts(otherNS)
	if err != nil {
		t.Fatal(err)
	}

	reg := fmt.Sprintf("tenants:\n- name: demo\n  kubeconfig: %s\n  resources: []\n- name: other\n  kubeconfig: %s\n", syncerKubeconfig(env, "demo"), syncerKubeconfig(env, "other"))
	restore := replaceRegistry(t, env, reg)
	framework.Eventually(t, 45*time.Second, "demo's optional host copies removed", func(ctx context.Context) error {
		if nps, pdbs, ings, err := counts(demoNS); err != nil || nps+pdbs+ings != 0 {
			return fmt.Errorf("still there (err %v)", err)
		}
		return nil
	}, describe)
	if _, err := host.CoreV1().PersistentVolumeClaims(demoNS).Get(ctx, hostClaim, metav1.GetOptions{}); err != nil {
		t.Errorf("demo's host claim must be kept when claims are turned off: %v", err)
	}
	if n, p, i, err := counts(otherNS); err != nil || n != oNPs || p != oPDBs || i != oIngs {
		t.Errorf("other's host copies changed: %s (err %v), had %d/%d/%d", describe(), err, oNPs, oPDBs, oIngs)
	}

	restore()
	framework.Eventually(t, 45*time.Second, "demo's copies back when turned on", func(ctx context.Context) error {
		if nps, pdbs, ings, err := counts(demoNS); err != nil || nps == 0 || pdbs == 0 || ings == 0 {
			return fmt.Errorf("not yet (err %v)", err)
		}
		return nil
	}, describe)
	if err := demo.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "kept", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, "demo's host claim removed with its claim", func(ctx context.Context) error {
		if _, err := host.CoreV1().PersistentVolumeClaims(demoNS).Get(ctx, hostClaim, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	}, describe)
}
