package translate

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/api/naming"
)

// PVDriver is the CSI driver name on the virtual PersistentVolumes that
// show a tenant its host volumes: nothing in the tenant acts on it.
const PVDriver = "host.kplex.dev"

// PersistentVolumeClaim returns the host claim of a virtual one. The host
// binds it: a volume name or label selector from the tenant could name a
// host volume meant for someone else, so neither is copied; a claim data
// source is translated to the tenant's host claim.
func (t Tenant) PersistentVolumeClaim(v *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	h := &corev1.PersistentVolumeClaim{ObjectMeta: t.HostMeta(v.ObjectMeta)}
	spec := *v.Spec.DeepCopy()
	spec.VolumeName = ""
	spec.Selector = nil
	for _, ref := range []*corev1.TypedLocalObjectReference{spec.DataSource} {
		if ref != nil && ref.Kind == "PersistentVolumeClaim" && (ref.APIGroup == nil || *ref.APIGroup == "") {
			ref.Name = t.HostName(v.Namespace, ref.Name)
		}
	}
	if ref := spec.DataSourceRef; ref != nil && ref.Kind == "PersistentVolumeClaim" && (ref.APIGroup == nil || *ref.APIGroup == "") {
		ref.Name = t.HostName(v.Namespace, ref.Name)
		ref.Namespace = nil
	}
	h.Spec = spec
	h.Annotations[naming.AnnotationContentHash] = HashSpec(spec)
	return h
}

// PersistentVolume is the virtual PersistentVolume showing the tenant the
// host volume its claim v is bound to (named after it): capacity, access
// modes, class, mode, bound to v. Retain: the tenant cannot reclaim a host
// volume; kplex removes the view with the claim.
func PersistentVolume(v *corev1.PersistentVolumeClaim, hostPV *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	st := hostPV.Status
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: hostPV.Spec.VolumeName, Labels: map[string]string{naming.LabelManaged: "true"}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      st.Capacity,
			AccessModes:                   hostPV.Spec.AccessModes,
			StorageClassName:              ptrValue(hostPV.Spec.StorageClassName),
			VolumeMode:                    hostPV.Spec.VolumeMode,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: v.Namespace, Name: v.Name, UID: v.UID},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: PVDriver, VolumeHandle: hostPV.Spec.VolumeName}},
		},
	}
	if len(st.AccessModes) > 0 {
		pv.Spec.AccessModes = st.AccessModes
	}
	return pv
}

// PVNeedsUpdate reports whether a virtual PV differs from want in what
// kplex sets.
func PVNeedsUpdate(cur, want *corev1.PersistentVolume) bool {
	return !equality.Semantic.DeepEqual(cur.Spec.Capacity, want.Spec.Capacity) ||
		!equality.Semantic.DeepEqual(cur.Spec.AccessModes, want.Spec.AccessModes) ||
		cur.Spec.StorageClassName != want.Spec.StorageClassName
}

func ptrValue(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
