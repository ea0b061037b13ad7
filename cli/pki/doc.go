// Package pki creates, stores and checks the certificates of a local
// Kubernetes control plane (etcd, kube-apiserver, controller-manager,
// scheduler, admin) and of virtual-cluster tenants.
//
// The contract: a CA is created once and never silently replaced; leaf
// certificates are cheap and are reissued whenever they no longer fit what
// the caller asks for (names, usages, remaining validity). Every key and
// certificate is ECDSA P-256 except the service-account signing key, which is
// RSA 2048. Files are written atomically (temp file + rename) with private
// keys at mode 0600, certificates at 0644 and directories created at 0700.
//
// Functions that create files are not safe against concurrent callers using
// the same directory and name; callers serialize them.
package pki
