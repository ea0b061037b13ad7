// Package shardinfo reads which syncer shard holds each tenant, from the
// shards' ownership bucket on NATS (api/bus.OwnersBucket), for the
// VirtualCluster status. It only reads: ownership is the shards' business.
package shardinfo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kplex.dev/api/bus"
)

// Reader looks up tenant owners. The zero URL disables it.
type Reader struct {
	URL string

	mu sync.Mutex
	nc *nats.Conn
	kv jetstream.KeyValue
}

// Owner returns the shard holding the tenant's lease, "" when none does
// (yet). Errors are for logs: status then keeps its last value.
func (r *Reader) Owner(ctx context.Context, tenant string) (string, error) {
	if r == nil || r.URL == "" {
		return "", nil
	}
	kv, err := r.bucket(ctx)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	e, err := kv.Get(ctx, tenant)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("shard owner of %s: %w", tenant, err)
	}
	var rec bus.OwnerRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return "", fmt.Errorf("shard owner of %s: %w", tenant, err)
	}
	return rec.Shard, nil
}

func (r *Reader) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kv != nil {
		return r.kv, nil
	}
	if r.nc == nil {
		nc, err := nats.Connect(r.URL, nats.Name("kplex-operator"), nats.MaxReconnects(-1), nats.Timeout(3*time.Second))
		if err != nil {
			return nil, fmt.Errorf("NATS %s: %w", r.URL, err)
		}
		r.nc = nc
	}
	js, err := jetstream.New(r.nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.OwnersBucket)
	if err != nil {
		return nil, fmt.Errorf("NATS bucket %s (no syncer shard has started?): %w", bus.OwnersBucket, err)
	}
	r.kv = kv
	return kv, nil
}

// Close closes the connection.
func (r *Reader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nc != nil {
		r.nc.Close()
	}
}
