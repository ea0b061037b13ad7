package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// Keys are bytes, compared byte by byte, as etcd's are: keys that differ
// only in case, in a trailing space or in a byte past 0x7f are different
// keys, each created once and read back with its own value; a list returns
// them in byte order, and so does a list a key at a time that starts each
// page just past the last key (kube-apiserver's continue: the last key and
// "\x00"). kine's MySQL table compared names in a case-insensitive,
// space-padded collation, where "Admin" and "admin" were one key.
// PostgreSQL keeps keys as text: a key that is not UTF-8 or holds "\x00"
// is refused there, and the others are kept as on the rest. A key never
// written ("a\x00") reads as absent and deletes nothing everywhere (kine
// on PostgreSQL read and deleted "a\x1a" in its place).
func TestKeysCompareByteByByte(t *testing.T) {
	const dir = "/registry/clusterroles/"
	names := []string{"Admin", "admin", "a", "a ", "a!", "a\x01", "a\x1a", "a\x00b", "b\x7f", "caf\xc3\xa9", "z\xff"}
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		var want []string
		for _, n := range names {
			k := dir + n
			// kube-apiserver's create: only if the key does not exist.
			resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", 0)).
				Then(clientv3.OpPut(k, fmt.Sprintf("%q", n))).Commit()
			if b.Kind == "postgres" && (!utf8.ValidString(k) || strings.Contains(k, "\x00")) {
				if err == nil {
					t.Errorf("create %q on postgres: want a refusal, it was created", k)
				}
				continue
			}
			want = append(want, k)
			if err != nil {
				t.Fatalf("create %q: %v", k, err)
			}
			if !resp.Succeeded {
				t.Errorf("create %q: the key exists already", k)
			}
		}
		slices.Sort(want)
		for _, k := range want {
			resp, err := c.Get(ctx, k)
			if err != nil {
				t.Fatalf("get %q: %v", k, err)
			}
			if len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != k || string(resp.Kvs[0].Value) != fmt.Sprintf("%q", k[len(dir):]) {
				t.Errorf("get %q: got %s", k, kvs(resp.Kvs))
			}
		}

		never := dir + "a\x00"
		if resp, err := c.Get(ctx, never); err != nil || len(resp.Kvs) != 0 {
			t.Errorf("get %q, never written: got %s, %v; want nothing", never, kvs(resp.Kvs), err)
		}
		if resp, err := c.Delete(ctx, never, clientv3.WithPrevKV()); err != nil || resp.Deleted != 0 {
			t.Errorf("delete %q, never written: deleted %d %s, %v; want nothing", never, resp.Deleted, kvs(resp.PrevKvs), err)
		}

		resp, err := c.Get(ctx, dir, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if got := keysOf(resp.Kvs); !slices.Equal(got, want) {
			t.Errorf("list:\n got %q\nwant %q", got, want)
		}

		var paged []string
		end := clientv3.GetPrefixRangeEnd(dir)
		for start := dir; ; {
			resp, err := c.Get(ctx, start, clientv3.WithRange(end), clientv3.WithLimit(1))
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Kvs) == 0 {
				break
			}
			last := string(resp.Kvs[0].Key)
			paged = append(paged, last)
			if !resp.More || len(paged) > len(want) {
				break
			}
			start = last + "\x00"
		}
		if !slices.Equal(paged, want) {
			t.Errorf("list a key at a time:\n got %q\nwant %q", paged, want)
		}
	})
}

func keysOf(kvs []*mvccpb.KeyValue) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

func kvs(kvs []*mvccpb.KeyValue) string {
	var out []string
	for _, kv := range kvs {
		out = append(out, fmt.Sprintf("%q=%q", kv.Key, kv.Value))
	}
	return "[" + strings.Join(out, " ") + "]"
}
