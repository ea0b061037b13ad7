package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// tlsRecheck is how often, at most, a handshake looks whether the TLS
// files have changed.
const tlsRecheck = time.Second

// tlsFiles serves the proxy's TLS from its files (--tls-cert-file,
// --tls-key-file, --client-ca-file), read again when one of them changes:
// cert-manager, or a kubelet updating a secret's volume, rotates them in
// place, and a proxy that kept the first ones failed every tenant's
// handshake once its serving certificate expired, and kept trusting a
// client CA that had been replaced. A change is looked for at a handshake,
// at most every tlsRecheck; files that changed but cannot be read (half
// written, or a key that does not match) leave the ones before in use,
// with a warning, until they change again.
type tlsFiles struct {
	cert, key, ca string
	log           *slog.Logger

	mu      sync.Mutex
	cfg     *tls.Config
	stamp   string    // the files' sizes and modification times when last read
	checked time.Time // when the stamp was last looked at
}

// serverTLS reads the proxy's TLS files; an error names the one that is
// wrong.
func serverTLS(o Options, log *slog.Logger) (credentials.TransportCredentials, error) {
	f := &tlsFiles{cert: o.TLSCertFile, key: o.TLSKeyFile, ca: o.ClientCAFile, log: log}
	f.stamp = f.stampNow()
	cfg, err := f.read()
	if err != nil {
		return nil, err
	}
	f.cfg, f.checked = cfg, time.Now()
	// Every handshake takes the files' config whole (read sets what it
	// asks of clients), so this one sets nothing else.
	return credentials.NewTLS(&tls.Config{GetConfigForClient: f.config}), nil
}

// config is the TLS config of a handshake: the files' as last read.
func (f *tlsFiles) config(*tls.ClientHelloInfo) (*tls.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := time.Now(); now.Sub(f.checked) >= tlsRecheck {
		f.checked = now
		if stamp := f.stampNow(); stamp != f.stamp {
			f.stamp = stamp
			cfg, err := f.read()
			if err != nil {
				f.log.Warn("the TLS files changed but cannot be used; serving with the ones before until they change again", "err", err)
			} else {
				f.cfg = cfg
				f.log.Info("TLS files reloaded", "cert", f.cert, "client-ca", f.ca)
			}
		}
	}
	return f.cfg, nil
}

// stampNow is the files' sizes and modification times (through symbolic
// links, as a secret's volume swaps them).
func (f *tlsFiles) stampNow() string {
	var s string
	for _, p := range []string{f.cert, f.key, f.ca} {
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		} else {
			s += "?;"
		}
	}
	return s
}

// read reads the files into a config of their own.
func (f *tlsFiles) read() (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	ca, err := os.ReadFile(f.ca)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("client CA %s: no certificate found", f.ca)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
