package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureServiceAccountKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if err := EnsureServiceAccountKey(dir, "sa"); err != nil {
		t.Fatal(err)
	}
	keyPath, pubPath := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	key, pub := readFile(t, keyPath), readFile(t, pubPath)
	if got := mode(t, keyPath); got != 0o600 {
		t.Errorf("key mode %v, want 0600", got)
	}
	signer, err := parsePrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, ok := signer.(*ecdsa.PrivateKey)
	if !ok || ecKey.Curve != elliptic.P256() {
		t.Fatalf("key %T, want ECDSA P-256", signer)
	}
	pubKey, err := parsePublicKeyPEM(pub)
	if err != nil || !publicKeysEqual(pubKey, ecKey.Public()) {
		t.Fatalf("pub does not match key (err %v)", err)
	}

	// Idempotent: a second call changes nothing.
	if err := EnsureServiceAccountKey(dir, "sa"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, keyPath), key) || !bytes.Equal(readFile(t, pubPath), pub) {
		t.Error("second call rewrote the files")
	}

	// An existing RSA key (older environments) is accepted, also as PKCS#1,
	// with its .pub derived.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(pubPath); err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	writeFile(t, keyPath, pkcs1)
	if err := EnsureServiceAccountKey(dir, "sa"); err != nil {
		t.Errorf("PKCS#1 key: %v", err)
	}
	if derived, err := parsePublicKeyPEM(readFile(t, pubPath)); err != nil || !publicKeysEqual(derived, rsaKey.Public()) {
		t.Errorf("pub derived from the RSA key does not match (err %v)", err)
	}
}

func TestEnsureServiceAccountKeyProblems(t *testing.T) {
	other := t.TempDir()
	if err := EnsureServiceAccountKey(other, "sa"); err != nil {
		t.Fatal(err)
	}
	otherPub := readFile(t, filepath.Join(other, "sa.pub"))

	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		wantErr string // empty: success
		check   func(t *testing.T, dir string)
	}{
		{
			name: "mismatched pub",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "sa.pub"), otherPub)
			},
			wantErr: "sa.pub does not match",
		},
		{
			name: "lone pub",
			setup: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "sa.key")); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "without its private key",
		},
		{
			name: "garbage key",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "sa.key"), []byte("garbage"))
			},
			wantErr: "sa.key",
		},
		{
			name: "lone key gets its pub",
			setup: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "sa.pub")); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, dir string) {
				key, err := parsePrivateKeyPEM(readFile(t, filepath.Join(dir, "sa.key")))
				if err != nil {
					t.Fatal(err)
				}
				pub, err := parsePublicKeyPEM(readFile(t, filepath.Join(dir, "sa.pub")))
				if err != nil || !publicKeysEqual(pub, key.Public()) {
					t.Errorf("derived pub does not match (err %v)", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := EnsureServiceAccountKey(dir, "sa"); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			err := EnsureServiceAccountKey(dir, "sa")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want error containing %q", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, dir)
			}
		})
	}
}
