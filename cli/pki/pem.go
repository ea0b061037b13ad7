package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM block types.
const (
	pemCertificate   = "CERTIFICATE"
	pemPrivateKey    = "PRIVATE KEY"     // PKCS#8
	pemRSAPrivateKey = "RSA PRIVATE KEY" // PKCS#1
	pemECPrivateKey  = "EC PRIVATE KEY"  // SEC 1
	pemPublicKey     = "PUBLIC KEY"      // PKIX
)

// CertPEM returns the CA certificate PEM-encoded ("CERTIFICATE"), or nil
// when ca has no certificate.
func (ca *CA) CertPEM() []byte {
	if ca == nil {
		return nil
	}
	return certPEM(ca.Cert)
}

// KeyPEM returns the CA key PEM-encoded as PKCS#8 ("PRIVATE KEY").
func (ca *CA) KeyPEM() ([]byte, error) {
	if ca == nil {
		return nil, errors.New("encode CA key: nil CA")
	}
	b, err := keyPEM(ca.Key)
	if err != nil {
		return nil, fmt.Errorf("encode CA key: %w", err)
	}
	return b, nil
}

// CertPEM returns the leaf certificate PEM-encoded ("CERTIFICATE"), or nil
// when kp has no certificate.
func (kp *KeyPair) CertPEM() []byte {
	if kp == nil {
		return nil
	}
	return certPEM(kp.Cert)
}

// KeyPEM returns the leaf key PEM-encoded as PKCS#8 ("PRIVATE KEY").
func (kp *KeyPair) KeyPEM() ([]byte, error) {
	if kp == nil {
		return nil, errors.New("encode key: nil key pair")
	}
	b, err := keyPEM(kp.Key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return b, nil
}

// certPEM PEM-encodes cert, or returns nil for a nil cert.
func certPEM(cert *x509.Certificate) []byte {
	if cert == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: cert.Raw})
}

// keyPEM PEM-encodes key as PKCS#8.
func keyPEM(key crypto.Signer) ([]byte, error) {
	if key == nil {
		return nil, errors.New("no key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal PKCS#8: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// publicKeyPEM PEM-encodes pub as PKIX ("PUBLIC KEY").
func publicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal PKIX public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// firstBlock returns the first PEM block in data whose type is one of types,
// skipping others (e.g. the "EC PARAMETERS" block openssl writes before a
// key).
func firstBlock(data []byte, types ...string) (*pem.Block, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("no PEM block of type %q", types)
		}
		for _, t := range types {
			if block.Type == t {
				return block, nil
			}
		}
	}
}

// parseCertPEM parses the first certificate in data.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, err := firstBlock(data, pemCertificate)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// parsePrivateKeyPEM parses the first private key in data, in PKCS#8,
// PKCS#1 or SEC 1 form.
func parsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, err := firstBlock(data, pemPrivateKey, pemRSAPrivateKey, pemECPrivateKey)
	if err != nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case pemRSAPrivateKey:
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case pemECPrivateKey:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return signer, nil
}

// parsePublicKeyPEM parses the first PKIX public key in data.
func parsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, err := firstBlock(data, pemPublicKey)
	if err != nil {
		return nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	return pub, nil
}

// publicKeysEqual reports whether a and b are the same public key.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
