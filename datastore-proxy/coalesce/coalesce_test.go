package coalesce

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"kplex.dev/cli/pki"
)

// countingConn counts the writes that reach the socket; with failNext
// set, the next one writes half its bytes and fails.
type countingConn struct {
	net.Conn
	writes   atomic.Int64
	failNext atomic.Bool
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	if c.failNext.CompareAndSwap(true, false) {
		n, _ := c.Conn.Write(p[:len(p)/2])
		return n, errors.New("write failed part way")
	}
	return c.Conn.Write(p)
}

// handshake makes a TLS connection on loopback with the coalescing
// credentials, a client certificate for tenant-a, and returns the
// server's side, the socket under it, its auth info and the client's side.
func handshake(t *testing.T) (net.Conn, *countingConn, credentials.AuthInfo, *tls.Conn) {
	t.Helper()
	ca, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue(pki.CertSpec{CommonName: "proxy", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Issue(pki.CertSpec{CommonName: "tenant-a", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	creds := Server(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Cert.Raw}, PrivateKey: srv.Key}},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}))

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	client := make(chan *tls.Conn, 1)
	go func() {
		c, err := tls.Dial("tcp", lis.Addr().String(), &tls.Config{
			RootCAs:      pool,
			Certificates: []tls.Certificate{{Certificate: [][]byte{cli.Cert.Raw}, PrivateKey: cli.Key}},
			NextProtos:   []string{"h2"}, // as gRPC clients ask
		})
		if err != nil {
			t.Error(err)
			client <- nil
			return
		}
		client <- c
	}()
	raw, err := lis.Accept()
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingConn{Conn: raw}
	conn, info, err := creds.ServerHandshake(counted)
	if err != nil {
		t.Fatal(err)
	}
	c := <-client
	if c == nil {
		t.FailNow()
	}
	return conn, counted, info, c
}

// A write of many records reaches the socket in one system call; the
// client reads exactly what was written; the handshake, with a client
// certificate, and the peer's identity are TLS's own; writes TLS makes
// outside a write (close_notify on Close) still go out.
func TestAWritesRecordsGoOutTogether(t *testing.T) {
	conn, counted, info, c := handshake(t)
	defer c.Close()
	tlsInfo, ok := info.(credentials.TLSInfo)
	if !ok || len(tlsInfo.State.PeerCertificates) == 0 || tlsInfo.State.PeerCertificates[0].Subject.CommonName != "tenant-a" {
		t.Fatalf("auth info %#v: want TLS info with the client's certificate", info)
	}

	// Enough TLS traffic first that TLS uses full-size records.
	for range 2 {
		data := make([]byte, 200<<10)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		read := make(chan []byte, 1)
		go func() {
			got := make([]byte, len(data))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Error(err)
			}
			read <- got
		}()
		before := counted.writes.Load()
		if n, err := conn.Write(data); err != nil || n != len(data) {
			t.Fatalf("write: %d of %d bytes, err %v", n, len(data), err)
		}
		if w := counted.writes.Load() - before; w != 1 {
			t.Fatalf("a %d KiB write (%d or more TLS records) took %d socket writes, want 1", len(data)>>10, len(data)/(16<<10), w)
		}
		select {
		case got := <-read:
			if !bytes.Equal(got, data) {
				t.Fatal("the client read other bytes than were written")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the client did not get the write")
		}
	}

	before := counted.writes.Load()
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if counted.writes.Load() == before {
		t.Fatal("close wrote nothing: TLS's close_notify was held back")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the client's read after close: err %v, want EOF (close_notify received)", err)
	}
}

// Close ends a write that waits on a client that does not read at once,
// as TLS's Close does: it took 5 s (TLS, seeing no write of its own under
// way, sent its close_notify behind the held write and waited for it).
func TestCloseBreaksAWriteToAClientThatDoesNotRead(t *testing.T) {
	conn, counted, _, c := handshake(t)
	defer c.Close()
	before := counted.writes.Load()
	wrote := make(chan error, 1)
	go func() {
		_, err := conn.Write(make([]byte, 32<<20)) // far past the socket buffers
		wrote <- err
	}()
	// Wait for the held records' write to the socket, and for it to stop.
	for counted.writes.Load() == before {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-wrote:
		t.Fatalf("a 32 MiB write to a client that reads nothing returned (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	conn.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v with a write waiting on the client, want at once", took)
	}
	select {
	case <-wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("the write did not end when the connection was closed")
	}
}

// After a write to the socket failed part way, every later write fails
// and sends nothing: its records would reach the client behind a partial
// one. TLS makes its own writes' errors stick so; a held write's error
// reached the socket after TLS's Write had returned, and the next write
// went out.
func TestAWriteAfterAFailedOneFails(t *testing.T) {
	conn, counted, _, c := handshake(t)
	defer c.Close()
	defer conn.Close()
	counted.failNext.Store(true)
	if _, err := conn.Write(make([]byte, 64<<10)); err == nil {
		t.Fatal("a write whose socket write failed part way returned no error")
	}
	before := counted.writes.Load()
	if _, err := conn.Write([]byte("after")); err == nil {
		t.Fatal("a write after a failed one returned no error")
	}
	if n := counted.writes.Load() - before; n != 0 {
		t.Fatalf("a write after a failed one reached the socket in %d writes; want none", n)
	}
}
