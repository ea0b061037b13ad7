package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Why the benchmark counts etcd's WAL syncs: a single etcd member syncs
// its log to disk one batch at a time, and every write that arrived while
// a sync was under way goes into the next one, so its write rate is the
// writes each sync carries times its syncs a second. How many a sync
// carries is set by how soon each client's next write arrives after its
// last one returned: a hop that adds latency to each write's trip leaves
// fewer writes waiting for each sync, and as each sync has a cost of its
// own, etcd spends more a write. The tables show the writes per sync of
// the put and watch cells beside their rates (-backends etcd; not with
// -etcd-separate-http, whose metrics are on a URL of their own). The
// count is of every sync in the cell's time (the proxy writes nothing
// else to etcd then but, every 5 minutes, a compaction), and the syncs a
// second are the cell's rate over its writes per sync: for the watch
// cell, whose time runs until the last event arrives, a little low.

// walSyncMetric is etcd's count of WAL syncs.
const walSyncMetric = "etcd_disk_wal_fsync_duration_seconds_count"

// walSyncs reads how many WAL syncs the etcd at endpoint has made, from
// its /metrics (served on its client URL, as etcd does by default).
func walSyncs(ctx context.Context, c *http.Client, endpoint string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+endpoint+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("etcd's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("etcd's metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), walSyncMetric+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("etcd's metrics: %w", err)
	}
	return 0, fmt.Errorf("etcd's metrics: no %s", walSyncMetric)
}

// syncCounter returns a reader of the WAL sync count of the store the
// cells write to, or nil when that is not an etcd whose metrics the
// benchmark reads. Only etcd is both the direct endpoint and the proxy's
// store (startBackend).
func (e *env) syncCounter() (func(context.Context) (float64, error), error) {
	if e.store == nil || e.store != e.direct || etcdSeparateHTTP {
		return nil, nil
	}
	tlsCfg, err := e.pki.clientTLS("metrics")
	if err != nil {
		return nil, err
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 5 * time.Second}
	return func(ctx context.Context) (float64, error) { return walSyncs(ctx, c, e.directEndpoint) }, nil
}
