package vcluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestPrivateKubeconfig(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"ca.crt": "CA PEM", "me.crt": "CERT PEM", "me.key": "KEY PEM"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
current-context: other
clusters:
- {name: other, cluster: {server: "https://127.0.0.1:6443", certificate-authority: ca.crt}}
- {name: unrelated, cluster: {server: "https://10.0.0.1"}}
users:
- {name: me, user: {client-certificate: me.crt, client-key: me.key}}
- {name: someone, user: {token: secret-of-another-cluster}}
contexts:
- {name: other, context: {cluster: other, user: me}}
- {name: unrelated, context: {cluster: unrelated, user: someone}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := PrivateKubeconfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := clientcmd.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Contexts) != 1 || len(got.Clusters) != 1 || len(got.AuthInfos) != 1 || strings.Contains(string(b), "secret-of-another-cluster") {
		t.Errorf("not minified to the current context:\n%s", b)
	}
	c, u := got.Clusters["other"], got.AuthInfos["me"]
	if c == nil || u == nil || string(c.CertificateAuthorityData) != "CA PEM" || string(u.ClientCertificateData) != "CERT PEM" || string(u.ClientKeyData) != "KEY PEM" || c.CertificateAuthority != "" {
		t.Errorf("files not inlined:\n%s", b)
	}

	execKC := filepath.Join(dir, "exec.kubeconfig")
	if err := os.WriteFile(execKC, []byte(`apiVersion: v1
kind: Config
current-context: other
clusters: [{name: other, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: me, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: get-token}}}]
contexts: [{name: other, context: {cluster: other, user: me}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := PrivateKubeconfig(execKC); err == nil || !strings.Contains(err.Error(), "exec not allowed") {
		t.Errorf("an exec plugin was accepted: %v", err)
	}

	if err := os.Remove(filepath.Join(dir, "me.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := PrivateKubeconfig(kc); err == nil || !strings.Contains(err.Error(), "--private-nodes") {
		t.Errorf("a kubeconfig naming a missing file: %v", err)
	}
	if _, err := PrivateKubeconfig(filepath.Join(dir, "absent")); err == nil {
		t.Error("a missing kubeconfig was accepted")
	}
}
