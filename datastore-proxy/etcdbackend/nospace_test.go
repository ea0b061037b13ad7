package etcdbackend

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// noSpace raises etcd's NOSPACE alarm, as etcd does when its database
// reaches its quota, and clears it when the test ends.
func noSpace(t *testing.T, ctx context.Context, c *clientv3.Client) {
	t.Helper()
	members, err := c.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mc := etcdserverpb.NewMaintenanceClient(c.ActiveConnection())
	alarm := func(a etcdserverpb.AlarmRequest_AlarmAction) error {
		_, err := mc.Alarm(ctx, &etcdserverpb.AlarmRequest{Action: a, MemberID: members.Members[0].ID, Alarm: etcdserverpb.AlarmType_NOSPACE})
		return err
	}
	if err := alarm(etcdserverpb.AlarmRequest_ACTIVATE); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = alarm(etcdserverpb.AlarmRequest_DEACTIVATE) })
}

// Out of space, etcd refuses a transaction with a put and takes one
// without: a tenant's delete batched with another tenant's put is applied
// (the whole batch was refused, and the delete with it), and the put's
// refusal reaches the tenant as etcd sends it, ResourceExhausted with its
// message (it went out as Unknown: etcd's client hands its errors on as
// no gRPC status).
func TestOutOfSpaceADeleteIsNotRefusedForAnotherTenantsPut(t *testing.T) {
	c := startEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Put(ctx, "/kplex/alpha/k", "v"); err != nil {
		t.Fatal(err)
	}
	noSpace(t, ctx, c)

	del := &call{ctx: ctx, op: clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpDelete("/kplex/alpha/k", clientv3.WithPrevKV())}, nil), write: "/kplex/alpha/k", done: make(chan struct{})}
	put := putCall(ctx, "/kplex/beta/k")
	sendOneBatch(c, del, put)
	if del.err != nil {
		t.Errorf("alpha's delete, batched with beta's put, out of space: %v; want it applied", del.err)
	}
	if !errors.Is(rpctypes.Error(put.err), rpctypes.ErrNoSpace) {
		t.Errorf("beta's put out of space: %v; want %v", put.err, rpctypes.ErrNoSpace)
	}
	if r, err := c.Get(ctx, "/kplex/alpha/k"); err != nil || len(r.Kvs) != 0 {
		t.Errorf("alpha's key after its delete: %v, %v; want gone", r, err)
	}

	b := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
	_, _, err := b.Put(ctx, "/kplex/beta/k", []byte("v"), 0)
	if s, ok := status.FromError(err); !ok || s.Code() != codes.ResourceExhausted || !errors.Is(rpctypes.Error(err), rpctypes.ErrNoSpace) {
		t.Errorf("a put out of space: %v (%T); want etcd's %v as a gRPC status", err, err, rpctypes.ErrGRPCNoSpace)
	}
}
