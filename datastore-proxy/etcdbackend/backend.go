// Package etcdbackend is kine's server.Backend over an etcd cluster: the
// backend for scale, where many proxy replicas share one etcd.
//
// Semantics follow kine's contract (pkg/server/types.go): Create fails with
// ErrKeyExists when the key exists; Update and Delete succeed only at the
// given mod revision (Delete at revision 0 always) and otherwise return the
// current value and false; List and Count read [key, end) at a revision (0:
// latest); lease arguments are TTLs in seconds (leases.go); Watch streams
// events from a revision (watch.go). Compaction is the proxy's own policy
// (compact.go); errors are mapped to the etcd gRPC errors kube-apiserver
// understands.
package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/leaseid"
)

// Backend is kine's backend contract on etcd.
type Backend struct {
	c      *clientv3.Client
	kv     etcdserverpb.KVClient // c's, for answers left undecoded (rawlist.go)
	leases *leaseCache
	counts countCache
	// reads and writes at the latest revision go to etcd in batches
	// (batch.go).
	reads, writes *batcher

	compactInterval time.Duration
	minRetain       int64
	wg              *sync.WaitGroup
}

var _ server.Backend = (*Backend)(nil)

// New wraps a connected etcd client. Compaction runs every compactInterval
// (0: never), keeping at least that long of history and minRetain revisions
// (compact.go). reg, if not nil, gets the batches' metrics.
func New(c *clientv3.Client, wg *sync.WaitGroup, compactInterval time.Duration, minRetain int64, reg prometheus.Registerer) *Backend {
	sizes := newBatchMetrics(reg)
	b := &Backend{
		c: c, kv: clientv3.RetryKVClient(c), leases: newLeaseCache(c), wg: wg, compactInterval: compactInterval, minRetain: minRetain,
		reads:  newBatcher(c, maxInflightReads, sizes.WithLabelValues("read")),
		writes: newBatcher(c, maxInflightWrites, sizes.WithLabelValues("write")),
	}
	if compactInterval > 0 {
		// No count outlives the history every replica keeps (countCache).
		b.counts.maxAge = min(maxCountAge, compactInterval)
	}
	return b
}

// Start checks the cluster answers and starts the compaction loop, which
// runs until ctx ends.
func (b *Backend) Start(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := b.CurrentRevision(pctx); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	if b.compactInterval > 0 {
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.compactLoop(ctx) }()
	}
	return nil
}

// Get reads one key.
func (b *Backend) Get(ctx context.Context, key string, revision int64, keysOnly bool) (int64, *server.KeyValue, error) {
	rev, resp, err := b.get(ctx, key, revision, readOpts(revision, keysOnly)...)
	if err != nil {
		return 0, nil, err
	}
	if len(resp.Kvs) == 0 {
		return rev, nil, nil
	}
	return rev, toKV(resp.Kvs[0]), nil
}

// get reads key with opts: at the latest revision in a batch, at an older
// one (opts hold it) alone. It returns the header revision.
func (b *Backend) get(ctx context.Context, key string, revision int64, opts ...clientv3.OpOption) (int64, *etcdserverpb.RangeResponse, error) {
	return b.read(ctx, key, revision > 0, opts...)
}

// read is get, in a batch unless alone.
func (b *Backend) read(ctx context.Context, key string, alone bool, opts ...clientv3.OpOption) (int64, *etcdserverpb.RangeResponse, error) {
	if alone {
		resp, err := b.c.Get(ctx, key, opts...)
		if err != nil {
			return 0, nil, mapErr(err)
		}
		return resp.Header.Revision, (*etcdserverpb.RangeResponse)(resp), nil
	}
	r, rev, err := b.reads.do(ctx, clientv3.OpGet(key, opts...), "", len(key))
	if err != nil {
		return 0, nil, mapErr(err)
	}
	return rev, r.GetResponseRange(), nil
}

// Create creates key if it does not exist.
func (b *Backend) Create(ctx context.Context, key string, value []byte, ttl int64) (int64, error) {
	var rev int64
	var txn *etcdserverpb.TxnResponse
	err := b.leased(ctx, key, value, ttl, nil, func(put clientv3.Op, _ clientv3.LeaseID) (bool, error) {
		var err error
		rev, txn, err = b.write(ctx, key, len(key)+len(value), clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
			[]clientv3.Op{put}, nil))
		return err == nil && txn.Succeeded, err
	})
	if err != nil {
		return 0, err
	}
	if !txn.Succeeded {
		return rev, server.ErrKeyExists
	}
	return rev, nil
}

// Update writes key if it is still at revision. It sends etcd what
// kube-apiserver's GuaranteedUpdate sends it: the put if the key is at
// revision, else a read of the key, whose value comes back with false. A
// successful update returns no value (kine's bridge answers it with the
// revision alone): reading the key after the put cost etcd a range per
// update.
func (b *Backend) Update(ctx context.Context, key string, value []byte, revision, ttl int64) (int64, *server.KeyValue, bool, error) {
	var rev int64
	var txn *etcdserverpb.TxnResponse
	var opts []clientv3.OpOption
	if ttl > 0 {
		opts = append(opts, clientv3.WithPrevKV()) // the lease the key had
	}
	err := b.leased(ctx, key, value, ttl, opts, func(put clientv3.Op, lease clientv3.LeaseID) (bool, error) {
		var err error
		rev, txn, err = b.write(ctx, key, len(key)+len(value), clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", revision)},
			[]clientv3.Op{put},
			[]clientv3.Op{clientv3.OpGet(key)}))
		if err != nil || !txn.Succeeded {
			return false, err
		}
		prev := txn.Responses[0].GetResponsePut().GetPrevKv()
		return prev == nil || clientv3.LeaseID(prev.Lease) != lease, nil
	})
	if err != nil {
		return 0, nil, false, err
	}
	var kv *server.KeyValue
	if get := txn.Responses[0].GetResponseRange(); get != nil && len(get.Kvs) > 0 {
		kv = toKV(get.Kvs[0])
	}
	return rev, kv, txn.Succeeded, nil
}

// Put writes key whatever it holds, as etcd's Put, and returns what it
// held before (nil: nothing); tenantbackend.Putter.
func (b *Backend) Put(ctx context.Context, key string, value []byte, ttl int64) (int64, *server.KeyValue, error) {
	var rev int64
	var r *etcdserverpb.ResponseOp
	err := b.leased(ctx, key, value, ttl, []clientv3.OpOption{clientv3.WithPrevKV()}, func(put clientv3.Op, lease clientv3.LeaseID) (bool, error) {
		var err error
		if r, rev, err = b.writes.do(ctx, put, key, len(key)+len(value)); err != nil {
			return false, mapErr(err)
		}
		prev := r.GetResponsePut().GetPrevKv()
		return prev == nil || clientv3.LeaseID(prev.Lease) != lease, nil
	})
	if err != nil {
		return 0, nil, err
	}
	if p := r.GetResponsePut(); p != nil && p.PrevKv != nil {
		return rev, toKV(p.PrevKv), nil
	}
	return rev, nil, nil
}

// Delete deletes key if it is at revision. With revision 0 it deletes
// whatever key holds, and succeeds, as etcd's own delete, when it holds
// nothing (no previous value then).
func (b *Backend) Delete(ctx context.Context, key string, revision int64) (int64, *server.KeyValue, bool, error) {
	var cmps []clientv3.Cmp
	if revision != 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", revision))
	}
	rev, txn, err := b.write(ctx, key, len(key), clientv3.OpTxn(cmps,
		[]clientv3.Op{clientv3.OpDelete(key, clientv3.WithPrevKV())},
		[]clientv3.Op{clientv3.OpGet(key)}))
	if err != nil {
		return 0, nil, false, err
	}
	if !txn.Succeeded {
		get := txn.Responses[0].GetResponseRange()
		if get != nil && len(get.Kvs) > 0 {
			return rev, toKV(get.Kvs[0]), false, nil
		}
		return rev, nil, false, nil
	}
	d := txn.Responses[0].GetResponseDeleteRange()
	if d == nil || len(d.PrevKvs) == 0 {
		// Nothing to delete: etcd's transaction succeeded all the same.
		return rev, nil, true, nil
	}
	return rev, toKV(d.PrevKvs[0]), true, nil
}

// List reads [key, end) (the single key when end is "") at revision.
func (b *Backend) List(ctx context.Context, key, end string, limit, revision int64, keysOnly bool) (int64, []*server.KeyValue, error) {
	opts := append(readOpts(revision, keysOnly), clientv3.WithLimit(limit))
	if end != "" {
		opts = append(opts, clientv3.WithRange(end))
	}
	// A list of a range goes alone: its response can be large, and in a
	// batch every small read would wait for it.
	header, resp, err := b.read(ctx, key, revision > 0 || end != "", opts...)
	if err != nil {
		return 0, nil, err
	}
	kvs := make([]*server.KeyValue, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		kvs = append(kvs, toKV(kv))
	}
	if end != "" {
		rev := revision
		if rev == 0 {
			rev = header
		}
		b.counts.put(key, end, rev, resp.Count, header)
	}
	return header, kvs, nil
}

// ListStream is List delivered on a channel. As kine's contract requires,
// Errorc yields the error (if any) and is closed once KVc is drained.
func (b *Backend) ListStream(ctx context.Context, key, end string, limit, revision int64, keysOnly bool) server.ListResult {
	kvc := make(chan *server.KeyValue)
	errc := make(chan error, 1)
	rev, kvs, err := b.List(ctx, key, end, limit, revision, keysOnly)
	go func() {
		defer close(errc)
		defer close(kvc)
		if err != nil {
			errc <- err
			return
		}
		for _, kv := range kvs {
			select {
			case kvc <- kv:
			case <-ctx.Done():
				return
			}
		}
	}()
	return server.ListResult{CurrentRevision: rev, KVc: kvc, Errorc: errc}
}

// Count counts [key, end) at revision.
func (b *Backend) Count(ctx context.Context, key, end string, revision int64) (int64, int64, error) {
	if revision > 0 {
		if n, header, ok := b.counts.take(key, end, revision); ok {
			return header, n, nil
		}
	}
	opts := append(readOpts(revision, true), clientv3.WithCountOnly())
	if end != "" {
		opts = append(opts, clientv3.WithRange(end))
	}
	rev, resp, err := b.get(ctx, key, revision, opts...)
	if err != nil {
		return 0, 0, err
	}
	return rev, resp.Count, nil
}

// DbSize is the etcd member's database size.
func (b *Backend) DbSize(ctx context.Context) (int64, error) {
	eps := b.c.Endpoints()
	if len(eps) == 0 {
		return 0, errors.New("etcd: no endpoints")
	}
	st, err := b.c.Status(ctx, eps[0])
	if err != nil {
		return 0, mapErr(err)
	}
	return st.DbSize, nil
}

// CurrentRevision is the cluster's revision.
func (b *Backend) CurrentRevision(ctx context.Context) (int64, error) {
	rev, _, err := b.get(ctx, "/kplex-proxy-revision-probe", 0, clientv3.WithCountOnly())
	return rev, err
}

// Compact compacts the cluster's history up to revision.
func (b *Backend) Compact(ctx context.Context, revision int64) (int64, error) {
	_, err := b.c.Compact(ctx, revision)
	// Forgotten whatever the answer (a failed call may still have
	// compacted): a count below revision may no longer be etcd's answer.
	b.counts.compacted(revision)
	if err != nil && !errors.Is(rpctypes.Error(err), rpctypes.ErrCompacted) {
		return 0, mapErr(err)
	}
	return b.CurrentRevision(ctx)
}

// write runs the nested transaction txn, which writes key, in a batch.
func (b *Backend) write(ctx context.Context, key string, size int, txn clientv3.Op) (int64, *etcdserverpb.TxnResponse, error) {
	r, rev, err := b.writes.do(ctx, txn, key, size)
	if err != nil {
		return 0, nil, mapErr(err)
	}
	return rev, r.GetResponseTxn(), nil
}

// leased runs write with the op that puts key, with ttl's lease when ttl
// is set. When etcd no longer has the cached lease the op names (revoked
// by hand, or etcd restored from a backup), the cache forgets it and
// write runs once more, with a lease granted anew: otherwise every write
// of the TTL class would fail until the lease's window ended, which for
// long TTLs is days. write reports whether it attached key to the lease
// (it wrote, and the key was not on the lease already); if not, the
// lease's place is given back.
func (b *Backend) leased(ctx context.Context, key string, value []byte, ttl int64, opts []clientv3.OpOption, write func(put clientv3.Op, lease clientv3.LeaseID) (attached bool, err error)) error {
	for retried := false; ; retried = true {
		var id clientv3.LeaseID
		if ttl > 0 {
			var err error
			if id, err = b.leases.get(ctx, ttl); err != nil {
				return err
			}
		}
		attached, err := write(clientv3.OpPut(key, string(value), append(opts, clientv3.WithLease(id))...), id)
		if id != 0 && (err != nil || !attached) {
			b.leases.release(ttl, id)
		}
		if id == 0 || retried || !errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseNotFound) {
			return err
		}
		b.leases.forget(ttl, id)
	}
}

func readOpts(revision int64, keysOnly bool) []clientv3.OpOption {
	var opts []clientv3.OpOption
	if revision > 0 {
		opts = append(opts, clientv3.WithRev(revision))
	}
	if keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	return opts
}

func toKV(kv *mvccpb.KeyValue) *server.KeyValue {
	return &server.KeyValue{
		Key:            string(kv.Key),
		Value:          kv.Value,
		Version:        kv.Version,
		CreateRevision: kv.CreateRevision,
		ModRevision:    kv.ModRevision,
		Lease:          leaseid.TTL(kv.Lease), // the TTL class, as kine's lease (leaseid)
	}
}

// mapErr turns client errors into the gRPC errors the etcd API returns.
func mapErr(err error) error {
	switch rpctypes.Error(err) {
	case rpctypes.ErrCompacted:
		return server.ErrCompacted
	case rpctypes.ErrFutureRev:
		return server.ErrFutureRev
	}
	// etcd's client turns etcd's errors into EtcdErrors, which are no
	// gRPC statuses: passed on as they were, a tenant got them as Unknown,
	// and a refusal (no space, too many requests, no lease) read as an
	// error of unknown outcome (tenantbackend's maybeApplied). Passed on
	// as etcd sends them: their code, and the message clients know them by.
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return status.Error(ee.Code(), ee.Error())
	}
	return err
}

// DeleteRange deletes [key, end) (the single key when end is "") as etcd
// does, at one revision, and returns the keys deleted as they were;
// tenantbackend.RangeDeleter. It goes to etcd alone, not in a batch.
func (b *Backend) DeleteRange(ctx context.Context, key, end string) (int64, []*server.KeyValue, error) {
	opts := []clientv3.OpOption{clientv3.WithPrevKV()}
	if end != "" {
		opts = append(opts, clientv3.WithRange(end))
	}
	resp, err := b.c.Delete(ctx, key, opts...)
	if err != nil {
		return 0, nil, mapErr(err)
	}
	kvs := make([]*server.KeyValue, 0, len(resp.PrevKvs))
	for _, kv := range resp.PrevKvs {
		kvs = append(kvs, toKV(kv))
	}
	return resp.Header.Revision, kvs, nil
}
