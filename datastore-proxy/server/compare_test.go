package server_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A key that is absent or deleted compares as mod revision 0, as in etcd,
// on every backend. kine's SQL log compared it as its newest row's
// revision, deletion or not, so there:
//   - an unconditional delete of a key that never existed wrote a
//     deletion (a DELETE event, and a key taken off the tenant's count);
//   - an update at the revision of a key's deletion brought the key back,
//     counted as no key and no bytes, so a tenant could write past its
//     quota;
//   - a delete at that revision wrote a second deletion;
//   - an unconditional delete of a key that exists failed;
//   - and a delete of a key if it does not exist (compared with 0) deleted
//     it when it did, on every backend (kine reads it as a plain delete).
//
// The watch from before the first write must see exactly the changes the
// calls report, and a tenant at its key limit must stay there. alpha has
// a key limit only; beta a byte limit too, so the tenant layer reads each
// key it updates and hands it to the backend.
func TestAbsentKeysCompareAsEtcd(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		cfg := filepath.Join(t.TempDir(), "tenants.yaml")
		writeConfig(t, cfg, "tenants:\n  alpha: {maxKeys: 2}\n  beta: {maxKeys: 2, maxBytes: 100000}\n")
		px := proxytest.StartWith(t, b, func(o *app.Options) { o.TenantConfig = cfg })
		for _, tenant := range []string{"alpha", "beta"} {
			t.Run(tenant, func(t *testing.T) { compareAsEtcd(t, px.Client(t, tenant)) })
		}
	})
}

// compareAsEtcd is the test above for one tenant's client.
func compareAsEtcd(t *testing.T, c *clientv3.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const dir = "/registry/cmp/"
	ghost, k, k2 := dir+"ghost", dir+"k", dir+"k2"

	start, err := c.Get(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	wc := c.Watch(ctx, dir, clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1))
	var want []string // the changes every call reports, in order

	// An unconditional delete of a key that never existed: kine's shape
	// (a range and a delete, no compare).
	resp, err := c.Txn(ctx).Then(clientv3.OpGet(ghost), clientv3.OpDelete(ghost)).Commit()
	if err != nil {
		t.Fatalf("delete %s, which never existed: %v", ghost, err)
	}
	if d := resp.Responses[len(resp.Responses)-1].GetResponseDeleteRange(); !resp.Succeeded || d == nil || d.Deleted != 0 {
		t.Fatalf("delete %s, which never existed: succeeded=%v, responses %v; want success, nothing deleted", ghost, resp.Succeeded, resp.Responses)
	}

	// k written and deleted at its revision: the deletion's revision
	// is then no revision of k's.
	put, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, "v")).Else(clientv3.OpGet(k)).Commit()
	if err != nil || !put.Succeeded {
		t.Fatalf("create %s: %v (succeeded %v)", k, err, put != nil && put.Succeeded)
	}
	want = append(want, "PUT "+k)
	del, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", put.Header.Revision)).
		Then(clientv3.OpDelete(k)).Else(clientv3.OpGet(k)).Commit()
	if err != nil || !del.Succeeded {
		t.Fatalf("delete %s at its revision: %v (succeeded %v)", k, err, del != nil && del.Succeeded)
	}
	want = append(want, "DELETE "+k)
	gone := del.Header.Revision

	upd, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", gone)).
		Then(clientv3.OpPut(k, "back")).Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		t.Fatalf("update %s at its deletion's revision: %v", k, err)
	}
	if upd.Succeeded {
		t.Errorf("update %s at its deletion's revision %d succeeded; a deleted key compares as 0", k, gone)
		want = append(want, "PUT "+k)
	}
	again, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", gone)).
		Then(clientv3.OpDelete(k)).Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		t.Fatalf("delete %s again at its deletion's revision: %v", k, err)
	}
	if again.Succeeded {
		t.Errorf("delete %s again at its deletion's revision %d succeeded", k, gone)
	}
	if got, err := c.Get(ctx, k); err != nil || len(got.Kvs) != 0 {
		t.Errorf("get %s after its deletion: %v, %v; want nothing", k, got, err)
	}

	// An unconditional delete of a key that exists deletes it.
	if _, err := c.Put(ctx, k2, "v"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "PUT "+k2)
	resp, err = c.Txn(ctx).Then(clientv3.OpGet(k2), clientv3.OpDelete(k2)).Commit()
	if err != nil {
		t.Fatalf("unconditional delete of %s: %v", k2, err)
	}
	if d := resp.Responses[len(resp.Responses)-1].GetResponseDeleteRange(); !resp.Succeeded || d == nil || d.Deleted != 1 {
		t.Errorf("unconditional delete of %s: succeeded=%v, responses %v; want success, one key deleted", k2, resp.Succeeded, resp.Responses)
	} else {
		want = append(want, "DELETE "+k2)
	}

	// A delete of a key if it does not exist: nothing to delete when it
	// is absent; a failure, the key kept, when it exists.
	deleteIfAbsent := func(key string) (*clientv3.TxnResponse, error) {
		return c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
			Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit()
	}
	if resp, err := deleteIfAbsent(ghost); err != nil || !resp.Succeeded {
		t.Errorf("delete %s if absent: %v, %v; want success", ghost, resp, err)
	}
	if _, err := c.Put(ctx, k2, "kept"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "PUT "+k2)
	if resp, err := deleteIfAbsent(k2); err != nil || resp.Succeeded {
		t.Errorf("delete %s if absent, which exists: %v, %v; want a failure", k2, resp, err)
	} else if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) != 1 || string(kvs[0].Value) != "kept" {
		t.Errorf("delete %s if absent, which exists: answered %v; want the key", k2, resp.Responses)
	}
	if got, err := c.Get(ctx, k2); err != nil || len(got.Kvs) != 1 {
		t.Errorf("get %s after a delete if absent: %v, %v; want it kept", k2, got, err)
	}
	// Its failure's read is answered with the read's own options.
	failing := func(opts ...clientv3.OpOption) *etcdserverpb.RangeResponse {
		t.Helper()
		resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k2), "=", 0)).
			Then(clientv3.OpDelete(k2)).Else(clientv3.OpGet(k2, opts...)).Commit()
		if err != nil || resp.Succeeded {
			t.Fatalf("delete %s if absent, which exists: %v, %v; want a failure", k2, resp, err)
		}
		return resp.Responses[0].GetResponseRange()
	}
	if r := failing(clientv3.WithKeysOnly()); len(r.GetKvs()) != 1 || len(r.Kvs[0].Value) != 0 || string(r.Kvs[0].Key) != k2 {
		t.Errorf("delete %s if absent, its failure's read keys only: %v; want the key without its value", k2, r)
	}
	if r := failing(clientv3.WithCountOnly()); r.GetCount() != 1 || len(r.GetKvs()) != 0 {
		t.Errorf("delete %s if absent, its failure's read a count: %v; want a count of 1 and no keys", k2, r)
	}

	// The key limit: with k2 one more key fits, and the deletes above of
	// keys that held nothing freed no room for another.
	if err := create(ctx, c, dir+"q0", "v"); err != nil {
		t.Fatalf("the second key of 2: %v", err)
	}
	want = append(want, "PUT "+dir+"q0")
	err = create(ctx, c, dir+"q1", "v")
	if !errors.Is(rpctypes.Error(err), rpctypes.ErrNoSpace) {
		t.Errorf("a third key past maxKeys 2: err = %v, want %v", err, rpctypes.ErrNoSpace)
	}

	// The watch, up to the last write, saw what the calls reported.
	last := want[len(want)-1][len("PUT "):]
	var got []string
	for r := range wc {
		if err := r.Err(); err != nil {
			t.Fatalf("watch: %v (events so far %q)", err, got)
		}
		for _, ev := range r.Events {
			op := "PUT"
			if ev.Type == mvccpb.DELETE {
				op = "DELETE"
			}
			got = append(got, op+" "+string(ev.Kv.Key))
		}
		if len(got) > 0 && got[len(got)-1] == "PUT "+last {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("watch events\n got %q\nwant %q", got, want)
	}
}
