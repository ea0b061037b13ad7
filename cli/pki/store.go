package pki

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"time"
)

// WriteFiles writes the CA to dir/<name>.crt (mode 0644) and dir/<name>.key
// (mode 0600), each atomically, creating dir with mode 0700 if absent. The
// key is written first.
func (ca *CA) WriteFiles(dir, name string) error {
	if ca == nil || ca.Cert == nil {
		return fmt.Errorf("write CA %s: no certificate", name)
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return fmt.Errorf("write CA %s: %w", name, err)
	}
	if err := writePair(dir, name, ca.CertPEM(), key); err != nil {
		return fmt.Errorf("write CA %s: %w", name, err)
	}
	return nil
}

// WriteFiles writes the key pair to dir/<name>.crt (mode 0644) and
// dir/<name>.key (mode 0600), each atomically, creating dir with mode 0700 if
// absent. The key is written first.
func (kp *KeyPair) WriteFiles(dir, name string) error {
	if kp == nil || kp.Cert == nil {
		return fmt.Errorf("write key pair %s: no certificate", name)
	}
	key, err := kp.KeyPEM()
	if err != nil {
		return fmt.Errorf("write key pair %s: %w", name, err)
	}
	if err := writePair(dir, name, kp.CertPEM(), key); err != nil {
		return fmt.Errorf("write key pair %s: %w", name, err)
	}
	return nil
}

// LoadCA reads dir/<name>.crt and dir/<name>.key. It returns an error
// wrapping fs.ErrNotExist when either file is absent, and an error when the
// certificate is not a CA or the key does not match it.
func LoadCA(dir, name string) (*CA, error) {
	cert, key, err := loadPair(dir, name)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	ca := &CA{Cert: cert, Key: key}
	if err := ca.check(); err != nil {
		return nil, fmt.Errorf("load CA %s: %w", name, err)
	}
	return ca, nil
}

// LoadKeyPair reads dir/<name>.crt and dir/<name>.key. It returns an error
// wrapping fs.ErrNotExist when either file is absent, and an error when the
// key does not match the certificate. It does not check the issuer or the
// validity period.
func LoadKeyPair(dir, name string) (*KeyPair, error) {
	cert, key, err := loadPair(dir, name)
	if err != nil {
		return nil, fmt.Errorf("load key pair: %w", err)
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// LoadOrCreateCA loads dir/name.{crt,key}, or creates and writes a new CA
// when both are absent.
// If exactly one of the two files exists, or the pair does not match, it
// returns an error naming the file (never silently replaces a CA). It also
// refuses a CA that has expired, naming its files.
func LoadOrCreateCA(dir, name, commonName string) (*CA, error) {
	crtPath, keyPath, err := pairPaths(dir, name)
	if err != nil {
		return nil, fmt.Errorf("load or create CA: %w", err)
	}
	crtOK, err := exists(crtPath)
	if err != nil {
		return nil, fmt.Errorf("load or create CA: %w", err)
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load or create CA: %w", err)
	}
	switch {
	case !crtOK && !keyOK:
		ca, err := NewCA(commonName)
		if err != nil {
			return nil, fmt.Errorf("load or create CA: %w", err)
		}
		if err := ca.WriteFiles(dir, name); err != nil {
			return nil, fmt.Errorf("load or create CA: %w", err)
		}
		return ca, nil
	case !crtOK:
		return nil, fmt.Errorf("CA key %s exists without its certificate %s; refusing to replace it (remove it to create a new CA)", keyPath, crtPath)
	case !keyOK:
		return nil, fmt.Errorf("CA certificate %s exists without its key %s; refusing to replace it (remove it to create a new CA)", crtPath, keyPath)
	}
	ca, err := LoadCA(dir, name)
	if err != nil {
		return nil, fmt.Errorf("load or create CA: %w", err)
	}
	if now := time.Now(); now.After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("CA certificate %s expired at %s (remove %s and %s to create a new CA)",
			crtPath, ca.Cert.NotAfter.Format(time.RFC3339), crtPath, keyPath)
	}
	return ca, nil
}

// writePair writes the key, then the certificate.
func writePair(dir, name string, certPEM, keyPEM []byte) error {
	crtPath, keyPath, err := pairPaths(dir, name)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(keyPath, keyPEM, keyMode); err != nil {
		return err
	}
	return writeFileAtomic(crtPath, certPEM, certMode)
}

// pairFiles is the raw content of dir/name.{crt,key}.
type pairFiles struct {
	crtPath, keyPath string
	crt, key         []byte
}

// readPair reads dir/name.{crt,key}; errors are I/O errors (wrapping
// fs.ErrNotExist for an absent file).
func readPair(dir, name string) (*pairFiles, error) {
	crtPath, keyPath, err := pairPaths(dir, name)
	if err != nil {
		return nil, err
	}
	crt, err := os.ReadFile(crtPath)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	return &pairFiles{crtPath: crtPath, keyPath: keyPath, crt: crt, key: key}, nil
}

// parse decodes the certificate and key and checks that they match; errors
// name the offending file.
func (p *pairFiles) parse() (*x509.Certificate, crypto.Signer, error) {
	cert, err := parseCertPEM(p.crt)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.crtPath, err)
	}
	key, err := parsePrivateKeyPEM(p.key)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.keyPath, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, nil, fmt.Errorf("key %s does not match certificate %s", p.keyPath, p.crtPath)
	}
	return cert, key, nil
}

// loadPair reads and parses dir/name.{crt,key}.
func loadPair(dir, name string) (*x509.Certificate, crypto.Signer, error) {
	files, err := readPair(dir, name)
	if err != nil {
		return nil, nil, err
	}
	return files.parse()
}
