package translate

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"kplex.dev/api/naming"
)

func TestPersistentVolumeClaim(t *testing.T) {
	tr := NewTenant("demo", "10.0.0.1", 443)
	v := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "db", UID: "c1"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To("fast"),
			VolumeName:       "someone-elses-pv",
			Selector:         &metav1.LabelSelector{MatchLabels: map[string]string{"owner": "other"}},
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			DataSource:       &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "seed"},
			DataSourceRef:    &corev1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "seed", Namespace: ptr.To("other-ns")},
		},
	}
	h := tr.PersistentVolumeClaim(v)
	if h.Namespace != "kplex-demo" || h.Name != naming.HostName("db", "data") {
		t.Errorf("host claim %s/%s", h.Namespace, h.Name)
	}
	if h.Spec.VolumeName != "" || h.Spec.Selector != nil {
		t.Errorf("a tenant's volume name or selector reached the host: %q %v", h.Spec.VolumeName, h.Spec.Selector)
	}
	if h.Spec.DataSource.Name != naming.HostName("db", "seed") || h.Spec.DataSourceRef.Name != naming.HostName("db", "seed") || h.Spec.DataSourceRef.Namespace != nil {
		t.Errorf("data sources not confined to the tenant: %+v %+v", h.Spec.DataSource, h.Spec.DataSourceRef)
	}
	if *h.Spec.StorageClassName != "fast" || v.Spec.VolumeName != "someone-elses-pv" {
		t.Error("class changed, or the virtual claim was modified")
	}

	bound := h.DeepCopy()
	bound.Spec.VolumeName = "pv-7"
	bound.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}}
	pv := PersistentVolume(v, bound)
	if pv.Name != "pv-7" || pv.Spec.ClaimRef.Name != "data" || pv.Spec.ClaimRef.Namespace != "db" || pv.Spec.ClaimRef.UID != "c1" {
		t.Errorf("virtual volume %s bound to %+v", pv.Name, pv.Spec.ClaimRef)
	}
	if pv.Spec.Capacity.Storage().String() != "2Gi" || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || pv.Spec.CSI.Driver != PVDriver || pv.Spec.StorageClassName != "fast" {
		t.Errorf("virtual volume spec %+v", pv.Spec)
	}
	if pv.Labels[naming.LabelManaged] != "true" {
		t.Error("virtual volume not marked as kplex's")
	}
	if PVNeedsUpdate(pv, PersistentVolume(v, bound)) {
		t.Error("equal volumes need an update")
	}
	bigger := bound.DeepCopy()
	bigger.Status.Capacity[corev1.ResourceStorage] = resource.MustParse("3Gi")
	if !PVNeedsUpdate(pv, PersistentVolume(v, bigger)) {
		t.Error("a capacity change needs no update")
	}
}
