package server_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// streamed is a RangeStream's answer as one RangeResponse, and its chunks.
func streamed(ctx context.Context, c *clientv3.Client, key string, opts ...clientv3.OpOption) (*etcdserverpb.RangeResponse, []*etcdserverpb.RangeResponse, error) {
	ch, err := c.GetStream(ctx, key, opts...)
	if err != nil {
		return nil, nil, err
	}
	all := &etcdserverpb.RangeResponse{}
	var chunks []*etcdserverpb.RangeResponse
	for r := range ch {
		if err := r.Err(); err != nil {
			return nil, nil, err
		}
		chunks = append(chunks, r.RangeResponse)
		all.Kvs = append(all.Kvs, r.Kvs...)
		all.Header, all.More, all.Count = r.Header, r.More, r.Count
	}
	return all, chunks, nil
}

// putKeys writes n keys, named by format from 0 to n-1, to each client's
// tenant, 8 at a time, each holding "v" and its name.
func putKeys(t *testing.T, ctx context.Context, n int, format string, clients ...*clientv3.Client) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				key := fmt.Sprintf(format, i)
				for _, c := range clients {
					if _, err := c.Put(ctx, key, "v"+key); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// A RangeStream (kube-apiserver v1.37 lists every resource with one)
// answers what a Range answers: the same keys, count, more and revision,
// for limits that end anywhere in a chunk or page, counts, older
// revisions and lists of several pages, while another tenant's keys
// interleave. Every chunk but the last has no header.
func TestRangeStreamAnswersAsRange(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		alpha, beta := px.Client(t, "alpha"), px.Client(t, "beta")
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		putKeys(t, ctx, 250, "/registry/pods/p%03d", alpha, beta) // pages of 100, then 200
		first, err := alpha.Get(ctx, "/registry/pods/p000")
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if _, err := alpha.Put(ctx, fmt.Sprintf("/registry/pods/p%03d", i*150), "later"); err != nil {
				t.Fatal(err)
			}
		}
		// 24 values of 64 KiB, 1.5 MiB.
		big := strings.Repeat("b", 64<<10)
		for i := range 24 {
			if _, err := alpha.Put(ctx, fmt.Sprintf("/registry/big/b%02d", i), big); err != nil {
				t.Fatal(err)
			}
		}
		pods := []clientv3.OpOption{clientv3.WithPrefix()}
		for _, tc := range []struct {
			name      string
			key       string
			opts      []clientv3.OpOption
			minChunks int
		}{
			{"all", "/registry/pods/", pods, 2},
			// kine's bridge sent 11 keys and more=false here: the
			// eleventh was alone in its last chunk.
			{"limit 10", "/registry/pods/", append(pods, clientv3.WithLimit(10)), 1},
			{"limit 30", "/registry/pods/", append(pods, clientv3.WithLimit(30)), 1},
			{"limit 100", "/registry/pods/", append(pods, clientv3.WithLimit(100)), 1},
			{"limit 150", "/registry/pods/", append(pods, clientv3.WithLimit(150)), 2},
			{"limit 250", "/registry/pods/", append(pods, clientv3.WithLimit(250)), 2},
			{"limit 300", "/registry/pods/", append(pods, clientv3.WithLimit(300)), 2},
			{"keys only", "/registry/pods/", append(pods, clientv3.WithKeysOnly(), clientv3.WithLimit(120)), 2},
			{"count only", "/registry/pods/", append(pods, clientv3.WithCountOnly()), 1},
			{"older revision", "/registry/pods/", append(pods, clientv3.WithRev(first.Header.Revision)), 2},
			{"older revision, limited", "/registry/pods/", append(pods, clientv3.WithRev(first.Header.Revision), clientv3.WithLimit(160)), 2},
			{"from a key", "/registry/pods/p200", []clientv3.OpOption{clientv3.WithFromKey()}, 1},
			{"every key", "", []clientv3.OpOption{clientv3.WithFromKey()}, 2},
			{"one key", "/registry/pods/p007", nil, 1},
			{"large values", "/registry/big/", []clientv3.OpOption{clientv3.WithPrefix()}, 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// Nothing writes meanwhile, so both read one revision.
				want, err := alpha.Get(ctx, tc.key, tc.opts...)
				if err != nil {
					t.Fatalf("range: %v", err)
				}
				got, chunks, err := streamed(ctx, alpha, tc.key, tc.opts...)
				if err != nil {
					t.Fatalf("range stream: %v", err)
				}
				w := (*etcdserverpb.RangeResponse)(want)
				if !proto.Equal(got.Header, w.Header) || got.Count != w.Count || got.More != w.More || len(got.Kvs) != len(w.Kvs) {
					t.Fatalf("range stream: %d keys, count %d, more %v, header %v\nrange: %d keys, count %d, more %v, header %v",
						len(got.Kvs), got.Count, got.More, got.Header, len(w.Kvs), w.Count, w.More, w.Header)
				}
				for i := range got.Kvs {
					if !proto.Equal(got.Kvs[i], w.Kvs[i]) {
						t.Fatalf("key %d: range stream %q (mod %d), range %q (mod %d)", i, got.Kvs[i].Key, got.Kvs[i].ModRevision, w.Kvs[i].Key, w.Kvs[i].ModRevision)
					}
				}
				if len(chunks) < tc.minChunks {
					t.Fatalf("%d chunks, want at least %d", len(chunks), tc.minChunks)
				}
				for i, c := range chunks[:len(chunks)-1] {
					if c.Header != nil || c.Count != 0 || c.More {
						t.Fatalf("chunk %d of %d has a header, count or more: %v %d %v", i+1, len(chunks), c.Header, c.Count, c.More)
					}
				}
			})
		}
	})
}

// A RangeStream, of one page or several, reads its keys, counts them and
// reports its revision all at one revision, while the tenant's keys
// change: a list taken at the header's revision is the one streamed. (kine's bridge
// counted at the latest revision and reported that one: kube-apiserver's
// list would then claim a revision whose changes it never saw.)
func TestRangeStreamIsOneRevision(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		alpha := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		const keys = 250 // a whole list is three pages
		putKeys(t, ctx, keys, "/registry/cm/c%03d", alpha)
		var wg sync.WaitGroup
		wctx, stop := context.WithCancel(ctx)
		wg.Go(func() {
			for i := 0; wctx.Err() == nil; i++ {
				_, _ = alpha.Put(wctx, fmt.Sprintf("/registry/cm/c%03d", (i*37)%keys), fmt.Sprint(i))
			}
		})
		defer func() { stop(); wg.Wait() }()
		for i := range 30 {
			opts := []clientv3.OpOption{clientv3.WithPrefix()}
			if i%3 != 0 { // one page of 5, or every page
				opts = append(opts, clientv3.WithLimit(5))
			}
			got, _, err := streamed(ctx, alpha, "/registry/cm/", opts...)
			if err != nil {
				t.Fatalf("range stream: %v", err)
			}
			at, err := alpha.Get(ctx, "/registry/cm/", append(opts, clientv3.WithRev(got.Header.Revision))...)
			if err != nil {
				t.Fatalf("range at %d: %v", got.Header.Revision, err)
			}
			if got.Count != at.Count || len(got.Kvs) != len(at.Kvs) {
				t.Fatalf("stream at %d: %d keys, count %d; range at it: %d keys, count %d", got.Header.Revision, len(got.Kvs), got.Count, len(at.Kvs), at.Count)
			}
			for i := range got.Kvs {
				if got.Kvs[i].ModRevision != at.Kvs[i].ModRevision {
					t.Fatalf("stream with header revision %d: %s at mod revision %d; at that revision it is at %d",
						got.Header.Revision, got.Kvs[i].Key, got.Kvs[i].ModRevision, at.Kvs[i].ModRevision)
				}
			}
		}
	})
}

// A RangeStream passes its tenant's rate limit as a Range does.
func TestRangeStreamIsRateLimited(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "tenants.yaml")
	writeConfig(t, cfg, "tenants:\n  slow: {requestsPerSecond: 0.2, burst: 1}\n")
	px := proxytest.StartWith(t, backend.Config{Kind: "sqlite"}, func(o *app.Options) { o.TenantConfig = cfg })
	slow, other := px.Client(t, "slow"), px.Client(t, "other")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := streamed(ctx, slow, "/", clientv3.WithPrefix()); err != nil {
		t.Fatalf("first stream, within the burst: %v", err)
	}
	// The next token is 5 s away, past the 1 s a request may wait.
	if _, _, err := streamed(ctx, slow, "/", clientv3.WithPrefix()); !errors.Is(rpctypes.Error(err), rpctypes.ErrTooManyRequests) {
		t.Fatalf("second stream at once: err = %v, want %v", err, rpctypes.ErrTooManyRequests)
	}
	for i := range 3 {
		if _, _, err := streamed(ctx, other, "/", clientv3.WithPrefix()); err != nil {
			t.Fatalf("another tenant's stream %d: %v", i, err)
		}
	}
}
