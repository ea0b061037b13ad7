package pki

import (
	"bytes"
	"testing"
)

func TestEnsurePEM(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	spec := CertSpec{CommonName: "a", Client: true}
	kp, issued, err := ca.EnsurePEM(nil, nil, spec)
	if err != nil || !issued {
		t.Fatalf("first: issued=%v err=%v", issued, err)
	}
	crt := kp.CertPEM()
	key, _ := kp.KeyPEM()
	other, _ := NewCA("other-ca")
	tests := []struct {
		name        string
		crt, key    []byte
		spec        CertSpec
		ca          *CA
		wantReissue bool
	}{
		{"same spec kept", crt, key, spec, ca, false},
		{"new group reissued", crt, key, CertSpec{CommonName: "a", Organization: []string{"g"}, Client: true}, ca, true},
		{"new name reissued", crt, key, CertSpec{CommonName: "b", Client: true}, ca, true},
		{"garbage reissued", []byte("x"), key, spec, ca, true},
		{"other CA reissued", crt, key, spec, other, true},
		{"short validity reissued", nil, nil, CertSpec{CommonName: "a", Client: true, Validity: 24 * 3600e9}, ca, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, issued, err := tt.ca.EnsurePEM(tt.crt, tt.key, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if issued != tt.wantReissue {
				t.Fatalf("issued = %v, want %v", issued, tt.wantReissue)
			}
			if !issued && !bytes.Equal(got.CertPEM(), crt) {
				t.Fatal("kept pair changed")
			}
		})
	}
}

func TestParseCAAndSAKey(t *testing.T) {
	ca, _ := NewCA("x")
	k, _ := ca.KeyPEM()
	if _, err := ParseCA(ca.CertPEM(), k); err != nil {
		t.Fatal(err)
	}
	other, _ := NewCA("y")
	ok, _ := other.KeyPEM()
	if _, err := ParseCA(ca.CertPEM(), ok); err == nil {
		t.Fatal("mismatched CA key accepted")
	}
	priv, pub, err := NewServiceAccountKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckServiceAccountKeyPEM(priv, pub); err != nil {
		t.Fatal(err)
	}
	priv2, _, _ := NewServiceAccountKeyPEM()
	if err := CheckServiceAccountKeyPEM(priv2, pub); err == nil {
		t.Fatal("mismatched service-account pair accepted")
	}
}
