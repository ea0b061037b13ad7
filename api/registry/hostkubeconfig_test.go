package registry

import (
	"strings"
	"testing"
)

func TestCheckHostKubeconfig(t *testing.T) {
	const cluster = "clusters:\n- {name: c, cluster: {server: https://127.0.0.1:6443, certificate-authority-data: Q0E=}}\n"
	tests := []struct {
		name, in, wantErr string
	}{
		{"inline certificate", cluster + "users:\n- {name: u, user: {client-certificate-data: Qw==, client-key-data: Sw==}}\n", ""},
		{"inline token", cluster + "users:\n- {name: u, user: {token: abc}}\n", ""},
		{"exec plugin", cluster + "users:\n- {name: u, user: {exec: {command: /bin/sh, apiVersion: client.authentication.k8s.io/v1}}}\n", `user "u": exec not allowed`},
		{"token file", cluster + "users:\n- {name: u, user: {tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}}\n", "tokenFile not allowed"},
		{"auth provider", cluster + "users:\n- {name: u, user: {auth-provider: {name: oidc}}}\n", "auth-provider not allowed"},
		{"certificate paths", cluster + "users:\n- {name: u, user: {client-certificate: /etc/c.crt, client-key: /etc/c.key}}\n", "client-certificate, client-key not allowed"},
		{"CA path", "clusters:\n- {name: c, cluster: {server: https://x, certificate-authority: /etc/ca.crt}}\n", `cluster "c": certificate-authority not allowed`},
		{"not yaml", "{", "not a kubeconfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckHostKubeconfig([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
