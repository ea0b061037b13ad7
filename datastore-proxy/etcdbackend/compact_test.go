package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
)

func TestCompactorKeepsAnIntervalOfHistory(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const interval = time.Minute
	type tick struct {
		rev    int64
		after  time.Duration // since t0
		target int64         // 0: none
	}
	for _, tc := range []struct {
		name      string
		minRetain int64
		ticks     []tick
	}{
		{"the first tick only looks", 0, []tick{{100, 0, 0}}},
		{"each tick compacts to the revision of the one before", 0, []tick{{100, 0, 0}, {250, interval, 100}, {400, 2 * interval, 250}}},
		{"a tick that comes early waits for the next", 0, []tick{{100, 0, 0}, {150, interval / 2, 0}, {250, interval, 100}}},
		{"a late tick still compacts to the older revision", 0, []tick{{100, 0, 0}, {900, 5 * interval, 100}, {950, 6 * interval, 900}}},
		{"never within the last minRetain revisions", 1000, []tick{{1500, 0, 0}, {1800, interval, 800}, {2100, 2 * interval, 1100}}},
		{"nothing new to compact", 0, []tick{{100, 0, 0}, {100, interval, 100}, {100, 2 * interval, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c compactor
			for i, tk := range tc.ticks {
				target, ok := c.sighted(tk.rev, t0.Add(tk.after), interval, tc.minRetain)
				if !ok {
					target = 0
				}
				if target != tk.target {
					t.Fatalf("tick %d (rev %d at +%s): compact to %d, want %d", i, tk.rev, tk.after, target, tk.target)
				}
				if ok {
					c.compacted = target
				}
			}
		})
	}
}

// Against a real etcd, with writes going on: every revision written
// within the last compaction interval can be read (less a margin for the
// read's own time), and older history is compacted.
func TestCompactionKeepsTheLastIntervalReadable(t *testing.T) {
	c := startEtcd(t)
	const interval = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b := New(c, &wg, interval, 0, prometheus.NewRegistry())
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); wg.Wait() }()

	type write struct {
		at  time.Time // before the write began
		rev int64
	}
	var writes []write
	checked := 0
	deadline := time.Now().Add(8 * interval)
	for i := 0; time.Now().Before(deadline); i++ {
		at := time.Now()
		rev, err := b.Create(ctx, fmt.Sprintf("/r/%d", i), []byte("v"), 0)
		if err != nil {
			t.Fatal(err)
		}
		writes = append(writes, write{at, rev})
		// Read the oldest write begun less than an interval ago (less 20
		// ms). A compaction done by the time the read returns went at most
		// to a revision current an interval before then, so if the write
		// began after that, the read must find it.
		now := time.Now()
		for j, w := range writes {
			if w.at.Before(now.Add(-interval + 20*time.Millisecond)) {
				continue
			}
			_, _, err := b.Get(ctx, fmt.Sprintf("/r/%d", j), w.rev, false)
			done := time.Now()
			if err != nil && w.at.After(done.Add(-interval)) {
				t.Fatalf("a read at revision %d, of a write begun %s before the read returned, within the %s kept: %v", w.rev, done.Sub(w.at).Round(time.Millisecond), interval, err)
			}
			if err == nil {
				checked++
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if checked < 20 {
		t.Fatalf("only %d reads checked", checked)
	}
	_, _, err := b.Get(ctx, "/r/0", writes[0].rev, false)
	if !errors.Is(err, server.ErrCompacted) {
		t.Fatalf("a read at the first write's revision %d, %s later: err = %v, want compacted", writes[0].rev, 8*interval, err)
	}
}
