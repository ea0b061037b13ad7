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
	"k8s.io/utils/ptr"

	"kplex.dev/api/naming"
	"kplex.dev/e2e/framework"
)

// testVolumes binds each tenant's claim (the same name in both) to a host
// volume: the host claim is bound by the host, the tenant sees a volume of
// the host's capacity bound to its claim and never the other tenant's, a
// pod using the claim uses its own host claim, and deleting the claim
// removes the host claim and the tenant's view of the volume.
func testVolumes(t *testing.T, tenants map[string]kubernetes.Interface, host kubernetes.Interface) {
	ctx := context.Background()
	const ns = "default"
	var pvs []string
	for i := range tenants {
		name := "e2e-static-pv-" + i
		pvs = append(pvs, name)
		hostPV := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName:       "manual",
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/kplex-e2e-pv"}},
		}}
		if _, err := host.CoreV1().PersistentVolumes().Create(ctx, hostPV, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = host.CoreV1().PersistentVolumes().Delete(ctx, name, metav1.DeleteOptions{}) }()
	}
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
		StorageClassName: ptr.To("manual"),
		AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
	}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "c", Image: "x", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
		Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
	}}
	for _, c := range tenants {
		if _, err := c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bound := map[string]string{} // tenant -> volume
	for tn, c := range tenants {
		framework.Eventually(t, 60*time.Second, tn+"'s claim bound to a view of its host volume only", func(ctx context.Context) error {
			v, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if v.Status.Phase != corev1.ClaimBound || v.Spec.VolumeName == "" || v.Status.Capacity.Storage().String() != "2Gi" {
				return fmt.Errorf("virtual claim %s on %q with %v", v.Status.Phase, v.Spec.VolumeName, v.Status.Capacity)
			}
			h, err := host.CoreV1().PersistentVolumeClaims(naming.HostNamespace(tn)).Get(ctx, naming.HostName(ns, "data"), metav1.GetOptions{})
			if err != nil || h.Spec.VolumeName != v.Spec.VolumeName {
				return fmt.Errorf("host claim on %q, virtual on %q (%v)", h.Spec.VolumeName, v.Spec.VolumeName, err)
			}
			for _, pv := range pvs {
				got, err := c.CoreV1().PersistentVolumes().Get(ctx, pv, metav1.GetOptions{})
				switch {
				case pv == v.Spec.VolumeName && (err != nil || got.Status.Phase != corev1.VolumeBound):
					return fmt.Errorf("virtual volume %s: %v", pv, err)
				case pv != v.Spec.VolumeName && !apierrors.IsNotFound(err):
					return fmt.Errorf("%s sees volume %s, which is not bound to its claim (%v)", tn, pv, err)
				}
			}
			bound[tn] = v.Spec.VolumeName
			return nil
		}, nil)
		if _, err := c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for tn := range tenants {
		framework.Eventually(t, 30*time.Second, tn+"'s pod runs on its host claim", func(ctx context.Context) error {
			h, err := host.CoreV1().Pods(naming.HostNamespace(tn)).Get(ctx, naming.HostName(ns, "db"), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got := h.Spec.Volumes[0].PersistentVolumeClaim.ClaimName; got != naming.HostName(ns, "data") {
				return fmt.Errorf("host pod claims %s", got)
			}
			return nil
		}, nil)
	}
	for tn, c := range tenants {
		if err := c.CoreV1().Pods(ns).Delete(ctx, "db", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		if err := c.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 60*time.Second, tn+": host claim and virtual volume gone with the claim", func(ctx context.Context) error {
			if _, err := host.CoreV1().PersistentVolumeClaims(naming.HostNamespace(tn)).Get(ctx, naming.HostName(ns, "data"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("host claim still there (%v)", err)
			}
			if _, err := c.CoreV1().PersistentVolumes().Get(ctx, bound[tn], metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("virtual volume still there (%v)", err)
			}
			return nil
		}, nil)
	}
}
