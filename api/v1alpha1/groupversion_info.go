// Package v1alpha1 is the kplex.dev/v1alpha1 API: the VirtualCluster
// resource the operator reconciles.
//
// +kubebuilder:object:generate=true
// +groupName=kplex.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is kplex.dev/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: "kplex.dev", Version: "v1alpha1"}

// AddToScheme registers the types of this group version.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &VirtualCluster{}, &VirtualClusterList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
