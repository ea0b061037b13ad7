package etcdbackend

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// An update is sent to etcd as kube-apiserver's GuaranteedUpdate sends it:
// the put if the key is at the revision, else a read of the key (it read
// the key after the put too, a range per update for etcd that nobody
// used). It still answers as before: the revision on success, the key as
// it is on a lost compare.
func TestAnUpdateIsKubeApiserversTxn(t *testing.T) {
	var mu sync.Mutex
	var txns []*etcdserverpb.TxnRequest
	record := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if r, ok := req.(*etcdserverpb.TxnRequest); ok {
			mu.Lock()
			txns = append(txns, r)
			mu.Unlock()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	b := New(interceptedClient(t, record), &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := b.Create(ctx, "/u/k", []byte("v1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	txns = nil
	mu.Unlock()

	rev, _, ok, err := b.Update(ctx, "/u/k", []byte("v2"), created, 0)
	if err != nil || !ok || rev <= created {
		t.Fatalf("Update at the key's revision = %d, %v, %v; want a later revision, true", rev, ok, err)
	}
	lost, kv, ok, err := b.Update(ctx, "/u/k", []byte("v3"), created, 0)
	if err != nil || ok || kv == nil || string(kv.Value) != "v2" || kv.ModRevision != rev || lost < rev {
		t.Fatalf("Update at an old revision = %d, %+v, %v, %v; want false with the key at %d holding v2", lost, kv, ok, err, rev)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(txns) != 2 {
		t.Fatalf("etcd was sent %d transactions, want the two updates", len(txns))
	}
	for _, txn := range txns {
		var shape []string
		for _, branch := range [][]*etcdserverpb.RequestOp{txn.Success, txn.Failure} {
			var ops []string
			for _, op := range branch {
				switch {
				case op.GetRequestPut() != nil:
					ops = append(ops, "put")
				case op.GetRequestRange() != nil:
					ops = append(ops, "get")
				default:
					ops = append(ops, "other")
				}
			}
			shape = append(shape, strings.Join(ops, "+"))
		}
		if got := strings.Join(shape, " else "); got != "put else get" {
			t.Errorf("an update was sent as %q, want %q", got, "put else get")
		}
	}
}
