// Package conformance runs Kubernetes' storage conformance suite
// (k8s.io/apiserver/pkg/storage/testing, the tests the etcd3 store itself
// must pass) against the datastore-proxy, on every backend: a real etcd3
// store of kube-apiserver talks to a real proxy as a tenant.
package conformance
