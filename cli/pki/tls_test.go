package pki

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// tlsCert converts kp via its PEM encodings, as a server reading files would.
func tlsCert(t *testing.T, kp *KeyPair) tls.Certificate {
	t.Helper()
	key, err := kp.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(kp.CertPEM(), key)
	if err != nil {
		t.Fatalf("tls.X509KeyPair: %v", err)
	}
	return c
}

func TestMutualTLS(t *testing.T) {
	ca := mustCA(t, "ca")
	other := mustCA(t, "other-ca")
	server := mustIssue(t, ca, serverSpec())
	client := mustIssue(t, ca, adminSpec())
	foreignClient := mustIssue(t, other, adminSpec())

	tests := []struct {
		name         string
		client       *KeyPair
		clientTrusts *CA
		wantErr      bool
	}{
		{name: "right CA", client: client, clientTrusts: ca},
		{name: "foreign client cert", client: foreignClient, clientTrusts: ca, wantErr: true},
		{name: "client distrusts server", client: client, clientTrusts: other, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			serverCert := tlsCert(t, server)

			type result struct {
				err  error
				peer string
			}
			done := make(chan result, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					done <- result{err: err}
					return
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				tc := tls.Server(conn, &tls.Config{
					Certificates: []tls.Certificate{serverCert},
					ClientCAs:    pool(ca),
					ClientAuth:   tls.RequireAndVerifyClientCert,
				})
				if err := tc.Handshake(); err != nil {
					done <- result{err: err}
					return
				}
				peer := tc.ConnectionState().PeerCertificates[0].Subject.CommonName
				_, err = tc.Write([]byte("ok"))
				done <- result{err: err, peer: peer}
			}()

			conn, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			tc := tls.Client(conn, &tls.Config{
				Certificates: []tls.Certificate{tlsCert(t, tt.client)},
				RootCAs:      pool(tt.clientTrusts),
				ServerName:   "127.0.0.1", // verified against the IP SAN
			})
			// With TLS 1.3 the server rejects the client certificate after
			// the client's handshake completes, so read to see it.
			var clientErr error
			var got []byte
			if clientErr = tc.Handshake(); clientErr == nil {
				got, clientErr = io.ReadAll(io.LimitReader(tc, 2))
				if clientErr == nil && string(got) != "ok" {
					clientErr = io.ErrUnexpectedEOF
				}
			}
			_ = tc.Close()
			res := <-done

			if tt.wantErr {
				if res.err == nil || clientErr == nil {
					t.Fatalf("handshake succeeded: server err %v, client err %v", res.err, clientErr)
				}
				return
			}
			if res.err != nil || clientErr != nil {
				t.Fatalf("server err %v, client err %v", res.err, clientErr)
			}
			if res.peer != "kubernetes-admin" {
				t.Errorf("server saw client %q, want kubernetes-admin", res.peer)
			}
		})
	}
}
