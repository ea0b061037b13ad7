package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"time"
)

// renewBefore is the remaining validity below which EnsureKeyPair reissues a
// certificate.
const renewBefore = 30 * 24 * time.Hour

// EnsureKeyPair loads dir/name.{crt,key} if present, signed by ca, matching
// spec's CN, DNS names and IPs, and valid for at least another 30 days;
// otherwise issues a new one and writes it. Returns the pair and whether it
// was (re)issued.
//
// Matching also covers spec's Organization and its Server/Client usages, so
// a change of groups or usages reissues too; names and IPs are compared as
// sets. Missing, unparsable or mismatched files are replaced; other I/O
// errors (e.g. permission denied) are returned. A spec whose Validity is
// under 30 days is reissued on every call.
func (ca *CA) EnsureKeyPair(dir, name string, spec CertSpec) (*KeyPair, bool, error) {
	if err := ca.check(); err != nil {
		return nil, false, fmt.Errorf("ensure key pair %s: %w", name, err)
	}
	if err := spec.validate(); err != nil {
		return nil, false, fmt.Errorf("ensure key pair %s: %w", name, err)
	}
	files, err := readPair(dir, name)
	switch {
	case err == nil:
		if cert, key, err := files.parse(); err == nil {
			kp := &KeyPair{Cert: cert, Key: key}
			if ca.fits(kp.Cert, spec, time.Now()) == nil {
				return kp, false, nil
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("ensure key pair %s: %w", name, err)
	}
	kp, err := ca.Issue(spec)
	if err != nil {
		return nil, false, fmt.Errorf("ensure key pair %s: %w", name, err)
	}
	if err := kp.WriteFiles(dir, name); err != nil {
		return nil, false, fmt.Errorf("ensure key pair %s: %w", name, err)
	}
	return kp, true, nil
}

// fits returns why cert cannot be kept for spec at time now, or nil.
func (ca *CA) fits(cert *x509.Certificate, spec CertSpec, now time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	opts := x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	if _, err := cert.Verify(opts); err != nil {
		return fmt.Errorf("not valid under CA %q: %w", ca.Cert.Subject.CommonName, err)
	}
	if left := cert.NotAfter.Sub(now); left < renewBefore {
		return fmt.Errorf("expires in %v", left)
	}
	if cert.Subject.CommonName != spec.CommonName {
		return fmt.Errorf("common name %q, want %q", cert.Subject.CommonName, spec.CommonName)
	}
	if !sameSet(cert.Subject.Organization, spec.Organization) {
		return fmt.Errorf("organization %q, want %q", cert.Subject.Organization, spec.Organization)
	}
	if !sameSet(cert.DNSNames, spec.DNSNames) {
		return fmt.Errorf("DNS names %q, want %q", cert.DNSNames, spec.DNSNames)
	}
	if !sameSet(ipStrings(cert.IPAddresses), ipStrings(spec.IPs)) {
		return fmt.Errorf("IPs %v, want %v", cert.IPAddresses, spec.IPs)
	}
	if !sameSet(cert.ExtKeyUsage, spec.extKeyUsages()) {
		return fmt.Errorf("extended key usages %v, want %v", cert.ExtKeyUsage, spec.extKeyUsages())
	}
	return nil
}

// sameSet reports whether a and b hold the same elements, ignoring order
// and duplicates.
func sameSet[T ~string | ~int](a, b []T) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// ipStrings returns the canonical text of ips, so an IPv4 address compares
// equal in its 4- and 16-byte forms.
func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
