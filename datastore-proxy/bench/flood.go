package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"kplex.dev/cli/pki"
)

// The flooding tenant of the fairness measurement runs in a process of
// its own, as a second tenant's apiserver would: in the benchmark's
// process its writers would share the quiet client's Go runtime and
// delay the quiet tenant's requests before they reach the proxy.

// floodNice is the flood child's niceness (-flood-nice): above 0 it
// models a flooding tenant whose apiserver runs on other machines, so that
// its client's CPU does not delay the quiet tenant's client and the proxy.
var floodNice int

// startFlood runs writers concurrent writers as tenant name (its client
// certificate is issued here) against endpoint, until the returned stop.
func (e *env) startFlood(endpoint, name string, writers int) (stop func(), err error) {
	kp, err := e.pki.ca.Issue(pki.CertSpec{CommonName: name, Client: true})
	if err != nil {
		return nil, err
	}
	if err := kp.WriteFiles(e.pki.dir, name); err != nil {
		return nil, err
	}
	c, err := spawnWith("flood "+name, -1, floodNice, nil, "serve-flood", e.pki.dir, name, endpoint, strconv.Itoa(writers))
	if err != nil {
		return nil, err
	}
	return c.stop, nil
}

// serveFlood is the flood child: it connects as tenant name (PKIDIR/name.crt
// and .key), reports its endpoint once connected, and puts values with
// writers writers until ctx ends.
func serveFlood(ctx context.Context, pkiDir, name, endpoint, writers string) error {
	n, err := strconv.Atoi(writers)
	if err != nil || n < 1 {
		return fmt.Errorf("writers: want a positive number, got %q", writers)
	}
	pair, roots, err := pkiFiles(pkiDir, name)
	if err != nil {
		return err
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://" + endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}})
	if err != nil {
		return err
	}
	defer c.Close()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = c.Put(wctx, "/registry/flood/warm-up", string(value))
	cancel()
	if err != nil {
		return fmt.Errorf("first put: %w", err)
	}
	announce(endpoint)
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				_, _ = c.Put(ctx, fmt.Sprintf("/registry/flood/w%d/%d", w, i%500), string(value))
			}
		}()
	}
	wg.Wait()
	return nil
}
