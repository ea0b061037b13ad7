// Package datastore is the operator's view of a tenant in the shared
// datastore-proxy: it connects with the tenant's own datastore client
// certificate (CN = tenant), so the proxy confines it to the tenant's keys
// exactly as it confines the tenant's apiserver. Check proves the tenant
// can reach its keyspace; Purge deletes every key of a deleted tenant.
package datastore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Tenant is how to reach one tenant's keyspace.
type Tenant struct {
	Name      string
	Endpoints []string // https URLs of the proxy
	ServerCA  []byte   // PEM the proxy's serving certificate chains to
	CertPEM   []byte   // the tenant's datastore client certificate
	KeyPEM    []byte
}

func (t Tenant) client(ctx context.Context) (*clientv3.Client, error) {
	pair, err := tls.X509KeyPair(t.CertPEM, t.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("tenant %s datastore certificate: %w", t.Name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(t.ServerCA) {
		return nil, fmt.Errorf("datastore server CA: no certificate in PEM")
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   t.Endpoints,
		TLS:         &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialTimeout: 5 * time.Second,
		Context:     ctx,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("tenant %s: datastore %v: %w", t.Name, t.Endpoints, err)
	}
	return c, nil
}

// Check reads the tenant's key count: it fails unless the proxy is up and
// accepts the tenant's certificate.
func Check(ctx context.Context, t Tenant) (int64, error) {
	c, err := t.client(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, "/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("tenant %s: datastore %v: %w", t.Name, t.Endpoints, err)
	}
	return resp.Count, nil
}

// Purge deletes every key of the tenant, in batches, each key only at the
// revision it was read at. It returns how many keys it deleted. Call it
// only once the tenant's apiserver is stopped, or it may write again.
func Purge(ctx context.Context, t Tenant) (int, error) {
	c, err := t.client(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	deleted := 0
	for {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := c.Get(rctx, "/", clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(500))
		cancel()
		if err != nil {
			return deleted, fmt.Errorf("tenant %s: list datastore keys: %w", t.Name, err)
		}
		if len(resp.Kvs) == 0 {
			return deleted, nil
		}
		for _, kv := range resp.Kvs {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := c.Txn(dctx).
				If(clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)).
				Then(clientv3.OpDelete(string(kv.Key))).
				// The form kube-apiserver uses, the only delete kine accepts.
				Else(clientv3.OpGet(string(kv.Key))).Commit()
			cancel()
			if err != nil {
				return deleted, fmt.Errorf("tenant %s: delete datastore key %q: %w", t.Name, kv.Key, err)
			}
			deleted++
		}
		if err := ctx.Err(); err != nil {
			return deleted, errors.Join(err, fmt.Errorf("tenant %s: purge interrupted after %d keys", t.Name, deleted))
		}
	}
}
