package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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

// floodValueBytes is the size of the flood's values (-flood-value-bytes).
var floodValueBytes = len(value)

// floodTally is what a flood's writers got: puts done, puts refused with
// "too many requests", and other errors, over seconds.
type floodTally struct {
	ok, refused, failed int64
	seconds             float64
}

// startFlood runs writers concurrent writers of floodValueBytes values as
// tenant name (its client certificate is issued here) against endpoint,
// until the returned stop, which returns the flood's tally.
func (e *env) startFlood(endpoint, name string, writers int) (stop func() (floodTally, error), err error) {
	kp, err := e.pki.ca.Issue(pki.CertSpec{CommonName: name, Client: true})
	if err != nil {
		return nil, err
	}
	if err := kp.WriteFiles(e.pki.dir, name); err != nil {
		return nil, err
	}
	result := filepath.Join(e.pki.dir, name+".tally")
	if err := os.Remove(result); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err // an earlier round's tally must not pass for this one's
	}
	c, err := spawnWith("flood "+name, -1, floodNice, nil, "serve-flood", e.pki.dir, name, endpoint, strconv.Itoa(writers), strconv.Itoa(floodValueBytes), result)
	if err != nil {
		return nil, err
	}
	return func() (floodTally, error) {
		c.stop()
		var t floodTally
		b, err := os.ReadFile(result)
		if err != nil {
			return t, fmt.Errorf("flood %s's tally: %w (%s)", name, err, tail(c.stderr.String()))
		}
		if _, err := fmt.Sscan(string(b), &t.ok, &t.refused, &t.failed, &t.seconds); err != nil {
			return t, fmt.Errorf("flood %s's tally %q: %w", name, b, err)
		}
		if t.seconds <= 0 {
			return t, fmt.Errorf("flood %s's tally %q: no running time", name, b)
		}
		return t, nil
	}, nil
}

// serveFlood is the flood child: it connects as tenant name (PKIDIR/name.crt
// and .key), reports its endpoint once connected, and puts values of
// valueBytes with writers writers until ctx ends, then writes its tally
// (floodTally: four numbers) to result.
func serveFlood(ctx context.Context, pkiDir, name, endpoint, writers, valueBytes, result string) error {
	n, err := strconv.Atoi(writers)
	if err != nil || n < 1 {
		return fmt.Errorf("writers: want a positive number, got %q", writers)
	}
	size, err := strconv.Atoi(valueBytes)
	if err != nil || size < 0 {
		return fmt.Errorf("value bytes: want a number, got %q", valueBytes)
	}
	v := strings.Repeat("x", size)
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
	_, err = c.Put(wctx, "/registry/flood/warm-up", "x")
	cancel()
	if err != nil {
		return fmt.Errorf("first put: %w", err)
	}
	announce(endpoint)
	var wg sync.WaitGroup
	var ok, refused, failed atomic.Int64
	start := time.Now()
	for w := range n {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				_, err := c.Put(ctx, fmt.Sprintf("/registry/flood/w%d/%d", w, i%500), v)
				switch {
				case err == nil:
					ok.Add(1)
				case ctx.Err() != nil:
				case errors.Is(rpctypes.Error(err), rpctypes.ErrTooManyRequests):
					refused.Add(1)
				default:
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return os.WriteFile(result, fmt.Appendf(nil, "%d %d %d %f\n", ok.Load(), refused.Load(), failed.Load(), time.Since(start).Seconds()), 0o644)
}
