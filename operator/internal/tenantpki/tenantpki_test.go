package tenantpki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"testing"

	"kplex.dev/cli/pki"
)

func cert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnsure(t *testing.T) {
	ds, err := pki.NewCA("datastore")
	if err != nil {
		t.Fatal(err)
	}
	in := Inputs{Tenant: "team-a", ServiceCIDR: "10.96.0.0/16", EndpointHosts: []string{"127.0.0.1"}, DatastoreCA: ds}
	first, changed, err := Ensure(nil, in)
	if err != nil || !changed {
		t.Fatalf("first: changed=%v err=%v", changed, err)
	}
	for _, k := range []string{"ca.crt", "ca.key", "apiserver.crt", "front-proxy-client.key", "admin.crt", "syncer.crt", "scheduler.crt",
		"controller-manager.crt", "controller-manager-serve.crt", "datastore-client.crt", SAKey, SAPub} {
		if len(first[k]) == 0 {
			t.Errorf("missing %s", k)
		}
	}
	if cn := cert(t, first["datastore-client.crt"]).Subject.CommonName; cn != "team-a" {
		t.Errorf("datastore CN %q, want the tenant", cn)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ds.Cert)
	if _, err := cert(t, first["datastore-client.crt"]).Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("datastore cert not signed by the datastore CA: %v", err)
	}
	if g := cert(t, first["admin.crt"]).Subject.Organization; len(g) != 1 || g[0] != "system:masters" {
		t.Errorf("admin groups %v", g)
	}
	ips := cert(t, first["apiserver.crt"]).IPAddresses
	if len(ips) != 2 || ips[1].String() != "10.96.0.1" {
		t.Errorf("serving IPs %v, want loopback and the kubernetes Service IP", ips)
	}

	again, changed, err := Ensure(first, in)
	if err != nil || changed || !maps.EqualFunc(first, again, bytes.Equal) {
		t.Fatalf("second call changed the PKI: changed=%v err=%v", changed, err)
	}

	moved := in
	moved.EndpointHosts = []string{"team-a.example.com", "10.0.0.9"}
	third, changed, err := Ensure(first, moved)
	if err != nil || !changed {
		t.Fatalf("new endpoint: changed=%v err=%v", changed, err)
	}
	if !bytes.Equal(third["ca.crt"], first["ca.crt"]) || !bytes.Equal(third[SAKey], first[SAKey]) || !bytes.Equal(third["admin.crt"], first["admin.crt"]) {
		t.Error("a new endpoint replaced the CA, the service-account key or a client certificate")
	}
	if bytes.Equal(third["apiserver.crt"], first["apiserver.crt"]) {
		t.Error("the serving certificate was not reissued for the new endpoint")
	}
	if dns := cert(t, third["apiserver.crt"]).DNSNames; dns[len(dns)-1] != "team-a.example.com" {
		t.Errorf("serving DNS names %v", dns)
	}

	broken := maps.Clone(first)
	broken["ca.crt"] = []byte("not a certificate")
	if _, _, err := Ensure(broken, in); err == nil {
		t.Error("a damaged CA was replaced silently")
	}

	noPub := maps.Clone(first)
	delete(noPub, SAPub)
	fixed, changed, err := Ensure(noPub, in)
	if err != nil || !changed || pki.CheckServiceAccountKeyPEM(fixed[SAKey], fixed[SAPub]) != nil {
		t.Errorf("a broken service-account pair was not repaired: changed=%v err=%v", changed, err)
	}
}
