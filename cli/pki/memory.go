package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"
)

// The functions here keep PKI material in memory as PEM (e.g. in a
// Kubernetes Secret: the operator's tenant PKI) rather than in files. They
// follow the same rules as their file-based twins.

// ParseCA decodes a CA from PEM, checking that the key matches and the
// certificate is a usable, unexpired CA.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	p := &pairFiles{crtPath: "certificate", keyPath: "key", crt: certPEM, key: keyPEM}
	cert, key, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("parse CA: %w", err)
	}
	ca := &CA{Cert: cert, Key: key}
	if err := ca.check(); err != nil {
		return nil, fmt.Errorf("parse CA: %w", err)
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("parse CA: expired at %s", cert.NotAfter.Format(time.RFC3339))
	}
	return ca, nil
}

// EnsurePEM returns the pair certPEM/keyPEM when it is still right for spec
// under ca (verifies, matches names, groups and usages, not within 30 days
// of expiry: the rules of EnsureKeyPair), or a newly issued one. The bool
// reports a (re)issue, so the caller stores the new PEM.
func (ca *CA) EnsurePEM(certPEM, keyPEM []byte, spec CertSpec) (*KeyPair, bool, error) {
	if err := ca.check(); err != nil {
		return nil, false, fmt.Errorf("ensure %s: %w", spec.CommonName, err)
	}
	if err := spec.validate(); err != nil {
		return nil, false, fmt.Errorf("ensure %s: %w", spec.CommonName, err)
	}
	if len(certPEM) > 0 && len(keyPEM) > 0 {
		p := &pairFiles{crtPath: "certificate", keyPath: "key", crt: certPEM, key: keyPEM}
		if cert, key, err := p.parse(); err == nil && ca.fits(cert, spec, time.Now()) == nil {
			return &KeyPair{Cert: cert, Key: key}, false, nil
		}
	}
	kp, err := ca.Issue(spec)
	if err != nil {
		return nil, false, fmt.Errorf("ensure %s: %w", spec.CommonName, err)
	}
	return kp, true, nil
}

// NewServiceAccountKeyPEM returns a new ECDSA P-256 service-account key
// pair as PEM (private PKCS#8, public PKIX); see EnsureServiceAccountKey
// for why ECDSA.
func NewServiceAccountKeyPEM() (keyPEMOut, pubPEMOut []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("service-account key: %w", err)
	}
	if keyPEMOut, err = keyPEM(key); err != nil {
		return nil, nil, fmt.Errorf("service-account key: %w", err)
	}
	if pubPEMOut, err = publicKeyPEM(key.Public()); err != nil {
		return nil, nil, fmt.Errorf("service-account key: %w", err)
	}
	return keyPEMOut, pubPEMOut, nil
}

// CheckServiceAccountKeyPEM reports whether keyPEM and pubPEM parse and
// match.
func CheckServiceAccountKeyPEM(keyPEMIn, pubPEMIn []byte) error {
	key, err := parsePrivateKeyPEM(keyPEMIn)
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	pub, err := parsePublicKeyPEM(pubPEMIn)
	if err != nil {
		return fmt.Errorf("service-account public key: %w", err)
	}
	if !publicKeysEqual(pub, key.Public()) {
		return fmt.Errorf("service-account public key does not match the private key")
	}
	return nil
}
