package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

const (
	// caValidity is the lifetime of a new CA.
	caValidity = 10 * 365 * 24 * time.Hour
	// defaultLeafValidity is the lifetime of a leaf whose spec leaves
	// Validity at zero.
	defaultLeafValidity = 365 * 24 * time.Hour
	// clockSkew backdates NotBefore so a peer whose clock runs slightly
	// behind still accepts a certificate issued a moment ago.
	clockSkew = time.Minute
	// serialBits is the size of random serial numbers.
	serialBits = 128
)

// CA is a certificate authority whose key is kept in memory.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// CertSpec describes a leaf certificate.
type CertSpec struct {
	// CommonName is the subject CN; for client certificates Kubernetes
	// reads it as the user name. Required.
	CommonName string
	// Organization is the subject O; for client certificates Kubernetes
	// reads it as the groups, e.g. "system:masters".
	Organization []string
	// DNSNames are the DNS subject alternative names.
	DNSNames []string
	// IPs are the IP subject alternative names.
	IPs []net.IP
	// Server adds ExtKeyUsageServerAuth.
	Server bool
	// Client adds ExtKeyUsageClientAuth. At least one of Server and
	// Client must be true.
	Client bool
	// Validity is the lifetime of the certificate; 0 means 1 year. It is
	// cut short so the certificate never outlives its CA.
	Validity time.Duration
}

// KeyPair is a leaf certificate and its key.
type KeyPair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA creates a self-signed CA (ECDSA P-256, 10 years, CN=commonName,
// IsCA, KeyUsageCertSign|CRLSign|DigitalSignature). The CA may only sign
// leaf certificates (path length 0).
func NewCA(commonName string) (*CA, error) {
	if commonName == "" {
		return nil, errors.New("new CA: empty common name")
	}
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", commonName, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", commonName, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	cert, err := createCert(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", commonName, err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Issue signs a new leaf (ECDSA P-256, random 128-bit serial, NotBefore one
// minute in the past to tolerate clock skew). It refuses a spec with neither
// Server nor Client set, an empty CommonName or a negative Validity.
func (ca *CA) Issue(spec CertSpec) (*KeyPair, error) {
	if err := ca.check(); err != nil {
		return nil, fmt.Errorf("issue %q: %w", spec.CommonName, err)
	}
	if err := spec.validate(); err != nil {
		return nil, fmt.Errorf("issue %q: %w", spec.CommonName, err)
	}
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", spec.CommonName, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", spec.CommonName, err)
	}
	validity := spec.Validity
	if validity == 0 {
		validity = defaultLeafValidity
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   spec.CommonName,
			Organization: slices.Clone(spec.Organization),
		},
		DNSNames:              slices.Clone(spec.DNSNames),
		IPAddresses:           cloneIPs(spec.IPs),
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           spec.extKeyUsages(),
	}
	cert, err := createCert(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", spec.CommonName, err)
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// check reports whether ca can sign certificates.
func (ca *CA) check() error {
	switch {
	case ca == nil || ca.Cert == nil:
		return errors.New("CA has no certificate")
	case ca.Key == nil:
		return errors.New("CA has no key")
	case !ca.Cert.IsCA || !ca.Cert.BasicConstraintsValid:
		return fmt.Errorf("certificate %q is not a CA", ca.Cert.Subject.CommonName)
	case ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return fmt.Errorf("CA %q may not sign certificates", ca.Cert.Subject.CommonName)
	case !publicKeysEqual(ca.Cert.PublicKey, ca.Key.Public()):
		return fmt.Errorf("CA %q: key does not match certificate", ca.Cert.Subject.CommonName)
	}
	return nil
}

// validate reports whether spec describes a certificate Issue can sign.
func (spec CertSpec) validate() error {
	if spec.CommonName == "" {
		return errors.New("empty common name")
	}
	if !spec.Server && !spec.Client {
		return errors.New("certificate spec has neither Server nor Client usage")
	}
	if spec.Validity < 0 {
		return fmt.Errorf("negative validity %v", spec.Validity)
	}
	for _, name := range spec.DNSNames {
		if name == "" {
			return errors.New("empty DNS name")
		}
	}
	for _, ip := range spec.IPs {
		if ip.To16() == nil {
			return fmt.Errorf("invalid IP address %v", []byte(ip))
		}
	}
	return nil
}

// extKeyUsages returns the extended key usages spec asks for.
func (spec CertSpec) extKeyUsages() []x509.ExtKeyUsage {
	var eku []x509.ExtKeyUsage
	if spec.Server {
		eku = append(eku, x509.ExtKeyUsageServerAuth)
	}
	if spec.Client {
		eku = append(eku, x509.ExtKeyUsageClientAuth)
	}
	return eku
}

// newKey generates an ECDSA P-256 key.
func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
	}
	return key, nil
}

// newSerial returns a random, positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	b := make([]byte, serialBits/8)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	serial := new(big.Int).SetBytes(b)
	if serial.Sign() == 0 {
		serial.SetInt64(1) // serial numbers must be positive (RFC 5280)
	}
	return serial, nil
}

// createCert signs tmpl with parent's key and parses the result, so the
// returned certificate carries its DER encoding in Raw.
func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse created certificate: %w", err)
	}
	return cert, nil
}

// cloneIPs deep-copies ips.
func cloneIPs(ips []net.IP) []net.IP {
	if ips == nil {
		return nil
	}
	out := make([]net.IP, len(ips))
	for i, ip := range ips {
		out[i] = slices.Clone(ip)
	}
	return out
}
