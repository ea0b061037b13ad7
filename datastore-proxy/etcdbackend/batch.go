package etcdbackend

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/keyspace"
)

// Why the backend batches: every tenant's request used to be one request
// to etcd, so the proxy paid a gRPC client call and etcd a gRPC server
// call, a raft proposal or read index, and an apply per request, on top of
// the proxy's own serving. The calls that arrive while earlier ones are in
// flight now go to etcd together as one transaction, reads and writes
// apart: each write is a nested transaction of its own (its compare
// decides only its own branch), each read of one key or count a range of
// a read-only transaction. Lists of a range, whose responses can be large,
// and reads at an older revision go alone (backend.go). With hundreds of
// tenants' apiservers behind a few proxies, etcd sees fewer, larger
// requests.
//
// What stays as it was for each call: its result, its errors, and
// linearizability (a read-only transaction waits for etcd's read index like
// a range does). What changes: the writes of one batch share one revision,
// as the puts of one etcd transaction do; so a batch holds at most one
// write of each tenant (writeGroup). kube-apiserver's watch cache assumes
// no two changes of its keys share a revision: a client that resumes a
// watch from the revision of one would never see the other. Writes of
// different tenants may share one, as no tenant sees the other's. A write
// whose tenant already has one waiting goes alone, at once, as it would
// without batching; so does a write while no write of another tenant is
// pending: no other write could join its batch. Before, one of a busy
// lone tenant's writes always waited for a batch in flight to return,
// which cost it about 5% of its put rate (docs/benchmarks.md, session 24).
//
// A batch never writes one key twice (etcd refuses that), holds at most
// maxBatchOps calls and maxBatchBytes of keys and values (a larger call
// goes alone), and is sent when one of at most maxInflight batches in
// flight returns: a call that finds etcd idle goes at once, alone, from
// its caller's goroutine, and as the request it would be without batching
// (a read as a range: 0.15 ms less a lone get than as a transaction of one
// sent from another goroutine; docs/benchmarks.md, session 25). When
// etcd refuses a whole batch for one call's sake before applying it (a
// lease gone, too large, too many operations), every call is sent again
// alone, so that the error reaches its own caller only.

const (
	maxBatchOps   = 64      // etcd's --max-txn-ops is 128 by default
	maxBatchBytes = 1 << 20 // etcd's --max-request-bytes is 1.5 MiB by default
	batchTimeout  = time.Minute
)

// batcher sends the calls of one kind (reads or writes) to etcd in
// batches. Reads and writes are batched apart so that a read does not wait
// for a write's disk sync.
type batcher struct {
	c           *clientv3.Client
	maxInflight int
	sizes       prometheus.Observer // of every batch sent

	mu       sync.Mutex
	queue    []*batch // waiting, oldest first
	inflight int
	// writing counts the write calls between do's start and return, by
	// write group, and writes all of them.
	writing map[string]int
	writes  int
}

type batch struct {
	calls  []*call
	writes map[string]bool // the write groups of its calls
	bytes  int
}

// call is one operation and, once done is closed, its result.
type call struct {
	ctx   context.Context // the caller's
	op    clientv3.Op
	write string // the writeGroup of the key the op writes; "" for reads
	size  int

	done chan struct{}
	resp *etcdserverpb.ResponseOp
	rev  int64
	err  error
}

func newBatcher(c *clientv3.Client, maxInflight int, sizes prometheus.Observer) *batcher {
	return &batcher{c: c, maxInflight: maxInflight, sizes: sizes, writing: map[string]int{}}
}

// do runs op (writing the key write, or nothing when "") in the next batch,
// or alone when no batch could gain by it (a write while no other group's
// write is pending, or beside one of its group's waiting), and returns its
// response and the revision it was applied at.
func (b *batcher) do(ctx context.Context, op clientv3.Op, write string, size int) (*etcdserverpb.ResponseOp, int64, error) {
	c := &call{ctx: ctx, op: op, size: size, done: make(chan struct{})}
	if write != "" {
		c.write = writeGroup(write)
	}
	b.mu.Lock()
	queued := false
	if othersWriting := b.writes > b.writing[c.write]; c.write == "" || othersWriting {
		queued = b.enqueueLocked(c)
	}
	if c.write != "" {
		b.startWriteLocked(c.write)
		defer b.endWrite(c.write)
	}
	next := b.takeLocked()
	b.mu.Unlock()
	// own: next is c's own batch, of c alone, which nothing can join now;
	// the caller sends it, with its own context, rather than wake another
	// goroutine to, and then ends it as run would.
	own := next != nil && len(next.calls) == 1 && next.calls[0] == c
	if next != nil && !own {
		go b.run(next)
	}
	if own || !queued {
		b.sizes.Observe(1)
		b.sendOne(ctx, c)
		if own {
			b.finish()
		}
		return c.resp, c.rev, c.err
	}
	select {
	case <-c.done:
		return c.resp, c.rev, c.err
	case <-ctx.Done():
		// Unless its batch is on its way already, the call is dropped
		// before sending (send); otherwise it may still be applied, as
		// a request already sent may.
		return nil, 0, ctx.Err()
	}
}

// startWriteLocked counts a pending write of group; endWrite, once it
// returns.
func (b *batcher) startWriteLocked(group string) {
	b.writing[group]++
	b.writes++
}

func (b *batcher) endWrite(group string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes--
	if b.writing[group]--; b.writing[group] == 0 {
		delete(b.writing, group)
	}
}

// enqueueLocked adds c to the first waiting batch it fits in, or to a new
// one. It reports false, and queues nothing, when c is a write whose group
// already has a write waiting and no batch takes it: a new batch would only
// wait behind that one, so c is better sent alone.
func (b *batcher) enqueueLocked(c *call) bool {
	waiting := false
	for _, bt := range b.queue {
		if c.write != "" && bt.writes[c.write] {
			waiting = true
			continue
		}
		if len(bt.calls) < maxBatchOps && bt.bytes+c.size <= maxBatchBytes {
			bt.add(c)
			return true
		}
	}
	if waiting {
		return false
	}
	bt := &batch{writes: map[string]bool{}}
	bt.add(c)
	b.queue = append(b.queue, bt)
	return true
}

// writeGroup is what no two writes of one batch may share: the tenant of a
// key in a tenant's space (keyspace.Root + tenant + "/"), else the key.
func writeGroup(key string) string {
	if tenant, ok := tenantOf(key); ok {
		return key[:len(keyspace.Root)+len(tenant)+1]
	}
	return key
}

// tenantOf is the tenant of a key in a tenant's space.
func tenantOf(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, keyspace.Root)
	if !ok {
		return "", false
	}
	tenant, _, ok := strings.Cut(rest, "/")
	return tenant, ok
}

func (bt *batch) add(c *call) {
	bt.calls = append(bt.calls, c)
	bt.bytes += c.size
	if c.write != "" {
		bt.writes[c.write] = true
	}
}

// takeLocked returns the oldest waiting batch if another may be in flight.
func (b *batcher) takeLocked() *batch {
	if b.inflight >= b.maxInflight || len(b.queue) == 0 {
		return nil
	}
	bt := b.queue[0]
	b.queue[0] = nil
	b.queue = b.queue[1:]
	b.inflight++
	return bt
}

// run sends bt, then whatever batch waits, until none does.
func (b *batcher) run(bt *batch) {
	for bt != nil {
		b.send(bt)
		b.mu.Lock()
		b.inflight--
		bt = b.takeLocked()
		b.mu.Unlock()
	}
}

// finish ends a batch in flight that its caller sent itself (do), and
// hands the batch waiting next, if any, to a goroutine.
func (b *batcher) finish() {
	b.mu.Lock()
	b.inflight--
	next := b.takeLocked()
	b.mu.Unlock()
	if next != nil {
		go b.run(next)
	}
}

// send runs one batch as one transaction and hands every call its result.
// Calls whose callers have given up are dropped unsent, as gRPC drops a
// request whose context ended before it went out.
func (b *batcher) send(bt *batch) {
	calls := bt.calls[:0]
	for _, c := range bt.calls {
		if c.ctx.Err() != nil {
			c.err = c.ctx.Err()
			close(c.done)
			continue
		}
		calls = append(calls, c)
	}
	if len(calls) == 0 {
		return
	}
	b.sizes.Observe(float64(len(calls)))
	ctx, cancel := batchContext(calls)
	defer cancel()
	if len(calls) == 1 {
		b.sendOne(ctx, calls[0])
		return
	}
	ops := make([]clientv3.Op, len(calls))
	for i, c := range calls {
		ops[i] = c.op
	}
	resp, err := b.c.Txn(ctx).Then(ops...).Commit()
	if err != nil && len(calls) > 1 && refusedWhole(err) {
		b.sendAlone(ctx, calls)
		return
	}
	if err != nil && len(calls) > 1 && errors.Is(rpctypes.Error(err), rpctypes.ErrNoSpace) {
		// etcd out of space refuses a transaction with a put in it, and
		// takes one without (a delete, which a tenant needs most then):
		// those go alone, not refused for another tenant's put.
		var alone []*call
		for _, c := range calls {
			if hasPut(c.op) {
				c.err = err
				close(c.done)
			} else {
				alone = append(alone, c)
			}
		}
		b.sendAlone(ctx, alone)
		return
	}
	for i, c := range calls {
		if err != nil {
			c.err = err
		} else {
			c.resp, c.rev = resp.Responses[i], resp.Header.Revision
		}
		close(c.done)
	}
}

// sendAlone sends each call as a transaction of its own, at once.
func (b *batcher) sendAlone(ctx context.Context, calls []*call) {
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() { b.sendOne(ctx, c) })
	}
	wg.Wait()
}

// sendOne sends c as a transaction of its own and hands it its result.
func (b *batcher) sendOne(ctx context.Context, c *call) {
	defer close(c.done)
	c.resp, c.rev, c.err = b.commitOne(ctx, c.op)
}

// commitOne sends op alone: a nested transaction (a write) as the
// transaction itself rather than nested in another, which costs etcd a
// third more CPU per write; a put as a put, a read as a range; anything
// else as a transaction of one.
func (b *batcher) commitOne(ctx context.Context, op clientv3.Op) (*etcdserverpb.ResponseOp, int64, error) {
	if op.IsGet() || op.IsPut() {
		resp, err := b.c.Do(ctx, op)
		if err != nil {
			return nil, 0, err
		}
		if op.IsGet() {
			rng := (*etcdserverpb.RangeResponse)(resp.Get())
			return &etcdserverpb.ResponseOp{Response: &etcdserverpb.ResponseOp_ResponseRange{ResponseRange: rng}}, rng.Header.Revision, nil
		}
		put := (*etcdserverpb.PutResponse)(resp.Put())
		return &etcdserverpb.ResponseOp{Response: &etcdserverpb.ResponseOp_ResponsePut{ResponsePut: put}}, put.Header.Revision, nil
	}
	if op.IsTxn() {
		cmps, thenOps, elseOps := op.Txn()
		resp, err := b.c.Txn(ctx).If(cmps...).Then(thenOps...).Else(elseOps...).Commit()
		if err != nil {
			return nil, 0, err
		}
		txn := (*etcdserverpb.TxnResponse)(resp)
		return &etcdserverpb.ResponseOp{Response: &etcdserverpb.ResponseOp_ResponseTxn{ResponseTxn: txn}}, resp.Header.Revision, nil
	}
	resp, err := b.c.Txn(ctx).Then(op).Commit()
	if err != nil {
		return nil, 0, err
	}
	return resp.Responses[0], resp.Header.Revision, nil
}

// batchContext is the context a batch is sent with: the first call's
// values (trace context), not cancelled by any one caller, with the latest
// of the callers' deadlines, at most batchTimeout away.
func batchContext(calls []*call) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(batchTimeout)
	latest, all := time.Time{}, true
	for _, c := range calls {
		d, ok := c.ctx.Deadline()
		all = all && ok
		if ok && d.After(latest) {
			latest = d
		}
	}
	if all && latest.Before(deadline) {
		deadline = latest
	}
	return context.WithDeadline(context.WithoutCancel(calls[0].ctx), deadline)
}

// refusedWhole tells whether etcd refused a transaction before applying any
// of it, for a reason that may belong to one of its operations.
// Not when etcd is out of space or overloaded: that is every call's error,
// and sending them one by one would only load it more.
func refusedWhole(err error) bool {
	switch rpctypes.Error(err) {
	case rpctypes.ErrLeaseNotFound, rpctypes.ErrRequestTooLarge, rpctypes.ErrTooManyOps, rpctypes.ErrDuplicateKey, rpctypes.ErrCompacted, rpctypes.ErrFutureRev:
		return true
	case rpctypes.ErrNoSpace, rpctypes.ErrTooManyRequests:
		return false
	}
	s, ok := status.FromError(err)
	return ok && (s.Code() == codes.InvalidArgument || s.Code() == codes.ResourceExhausted)
}

// hasPut tells whether op puts a key, in a transaction's branches too.
func hasPut(op clientv3.Op) bool {
	if op.IsPut() {
		return true
	}
	if !op.IsTxn() {
		return false
	}
	_, thenOps, elseOps := op.Txn()
	return slices.ContainsFunc(thenOps, hasPut) || slices.ContainsFunc(elseOps, hasPut)
}

// How many batches of each kind may be in flight at once.
const (
	maxInflightReads  = 2
	maxInflightWrites = 2
)

// newBatchMetrics registers the histogram of calls per batch on reg (when
// not nil).
func newBatchMetrics(reg prometheus.Registerer) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kplex_datastore_proxy_etcd_batch_calls",
		Help:    "Tenant calls sent to etcd in one transaction, by kind (read or write).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
	}, []string{"kind"})
	if reg != nil {
		reg.MustRegister(h)
	}
	return h
}
