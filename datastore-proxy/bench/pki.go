package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"

	"kplex.dev/cli/pki"
)

// benchPKI is one CA for every server and client of the benchmark.
type benchPKI struct {
	ca                           *pki.CA
	dir                          string
	serverCrt, serverKey, caFile string
}

func newBenchPKI(dir string) (*benchPKI, error) {
	ca, err := pki.NewCA("bench-ca")
	if err != nil {
		return nil, err
	}
	srv, err := ca.Issue(pki.CertSpec{CommonName: "server", Server: true, Client: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		return nil, err
	}
	if err := ca.WriteFiles(dir, "ca"); err != nil {
		return nil, err
	}
	if err := srv.WriteFiles(dir, "server"); err != nil {
		return nil, err
	}
	return &benchPKI{ca: ca, dir: dir, serverCrt: filepath.Join(dir, "server.crt"), serverKey: filepath.Join(dir, "server.key"), caFile: filepath.Join(dir, "ca.crt")}, nil
}

// clientTLS presents a client certificate with CN (the tenant at the proxy).
func (p *benchPKI) clientTLS(cn string) (*tls.Config, error) {
	kp, err := p.ca.Issue(pki.CertSpec{CommonName: cn, Client: true})
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.ca.Cert)
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{{Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Key}}}, nil
}
