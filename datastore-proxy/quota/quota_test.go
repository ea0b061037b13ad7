package quota

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"kplex.dev/datastore-proxy/tenantconfig"
)

func TestAdmit(t *testing.T) {
	scan := func(context.Context, Pace) (int64, int64, int64, error) { return 8, 800, 1, nil }
	tests := []struct {
		name        string
		l           tenantconfig.Limits
		keys, bytes int64
		wantErr     bool
	}{
		{"no limits", tenantconfig.Limits{}, 1000, 1 << 30, false},
		{"within keys", tenantconfig.Limits{MaxKeys: 10}, 2, 0, false},
		{"past keys", tenantconfig.Limits{MaxKeys: 10}, 3, 0, true},
		{"within bytes", tenantconfig.Limits{MaxBytes: 1000}, 0, 200, false},
		{"past bytes", tenantconfig.Limits{MaxBytes: 1000}, 0, 201, true},
		{"shrinking is always allowed", tenantconfig.Limits{MaxKeys: 1, MaxBytes: 1}, -1, -100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u Usage
			err := u.Admit(context.Background(), tt.l, scan, tt.keys, tt.bytes)
			if (err != nil) != tt.wantErr || err != nil && !errors.Is(err, ErrNoSpace) {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	var u Usage
	u.Add(5, 5, 1) // ignored before the first scan
	if _, _, loaded := u.Snapshot(); loaded {
		t.Fatal("loaded before any scan")
	}
	var scans atomic.Int64
	counted := func(ctx context.Context, p Pace) (int64, int64, int64, error) { scans.Add(1); return scan(ctx, p) }
	_ = u.Admit(context.Background(), tenantconfig.Limits{}, counted, 0, 0)
	waitLoaded(t, &u)
	_ = u.Admit(context.Background(), tenantconfig.Limits{}, counted, 0, 0)
	if n := scans.Load(); n != 1 {
		t.Fatalf("scanned %d times, want once until RescanAfter", n)
	}
	u.Add(1, 10, 2)
	if k, b, _ := u.Snapshot(); k != 9 || b != 810 {
		t.Fatalf("after Add: %d keys %d bytes, want 9 and 810", k, b)
	}
}

// A stale count is rescanned in the background: the write that finds it
// stale is checked against the count it has and does not wait, one rescan
// runs however many writes come meanwhile, and its result replaces the
// count.
func TestStaleCountRescansInTheBackground(t *testing.T) {
	ctx := context.Background()
	var u Usage
	if err := u.Admit(ctx, tenantconfig.Limits{}, func(context.Context, Pace) (int64, int64, int64, error) { return 3, 30, 1, nil }, 1, 10); err != nil {
		t.Fatal(err)
	}
	waitLoaded(t, &u)
	u.mu.Lock()
	u.scanned = u.scanned.Add(-RescanAfter - time.Second)
	u.mu.Unlock()

	release, started := make(chan struct{}), make(chan struct{}, 10)
	slow := func(context.Context, Pace) (int64, int64, int64, error) {
		started <- struct{}{}
		<-release
		return 7, 70, 1, nil
	}
	limits := tenantconfig.Limits{MaxKeys: 4}
	for i := range 5 {
		// Checked against the old count, 3 keys: one more fits, two do not.
		if err := u.Admit(ctx, limits, slow, 1, 10); err != nil {
			t.Fatalf("write %d during the rescan: %v", i, err)
		}
		if err := u.Admit(ctx, limits, slow, 2, 10); !errors.Is(err, ErrNoSpace) {
			t.Fatalf("two keys over 3 of 4 during the rescan: err = %v", err)
		}
	}
	<-started
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if k, b, _ := u.Snapshot(); k == 7 && b == 70 {
			break
		}
		if time.Now().After(deadline) {
			k, b, _ := u.Snapshot()
			t.Fatalf("after the rescan: %d keys %d bytes, want 7 and 70", k, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(started); n != 0 {
		t.Fatalf("%d more rescans started, want one in all", n)
	}
}

// waitLoaded waits until u holds counts.
func waitLoaded(t *testing.T, u *Usage) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, loaded := u.Snapshot(); loaded {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the counts were never loaded")
		}
		time.Sleep(time.Millisecond)
	}
}

// A tenant with limits waits for its first count, and all its writes that
// arrive meanwhile wait for the same one scan; a writer that gives up
// gets its context's error and the scan goes on for the others.
func TestFirstCountIsSharedByTheWritesWaitingForIt(t *testing.T) {
	var u Usage
	var scans atomic.Int64
	release := make(chan struct{})
	scan := func(context.Context, Pace) (int64, int64, int64, error) {
		scans.Add(1)
		<-release
		return 9, 90, 1, nil
	}
	limits := tenantconfig.Limits{MaxKeys: 10}

	gone, cancel := context.WithCancel(context.Background())
	goneErr := make(chan error, 1)
	go func() { goneErr <- u.Admit(gone, limits, scan, 1, 1) }()
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { errs <- u.Admit(context.Background(), limits, scan, 1, 1) })
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-errs:
		t.Fatalf("a write of a tenant with limits went ahead of its first count: %v", err)
	default:
	}
	cancel()
	if err := <-goneErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the writer that gave up: err = %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		// 9 keys and one more fits the limit of 10 for each writer, as
		// none of them has recorded its write (Add) yet.
		if err != nil {
			t.Fatalf("a write after the count: %v", err)
		}
	}
	if n := scans.Load(); n != 1 {
		t.Fatalf("%d scans for 9 waiting writes, want 1", n)
	}
	if k, b, _ := u.Snapshot(); k != 9 || b != 90 {
		t.Fatalf("counts %d keys %d bytes, want 9 and 90", k, b)
	}
}

// A failed first count is the waiting writes' error, and the next write
// scans again.
func TestFailedFirstCountIsTheWritesError(t *testing.T) {
	var u Usage
	down := errors.New("backend down")
	limits := tenantconfig.Limits{MaxBytes: 100}
	if err := u.Admit(context.Background(), limits, func(context.Context, Pace) (int64, int64, int64, error) { return 0, 0, 0, down }, 1, 1); !errors.Is(err, down) {
		t.Fatalf("err = %v, want the scan's", err)
	}
	if err := u.Admit(context.Background(), limits, func(context.Context, Pace) (int64, int64, int64, error) { return 1, 100, 1, nil }, 1, 1); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("after a second, successful scan (100 of 100 bytes): err = %v, want no space", err)
	}
}

// Tenants without limits do not wait for their counts, and at most
// MaxBackgroundScans of their scans run at once.
func TestBackgroundScansAreBounded(t *testing.T) {
	const tenants = 6
	var running, most atomic.Int64
	release := make(chan struct{})
	scan := func(context.Context, Pace) (int64, int64, int64, error) {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		running.Add(-1)
		return 1, 1, 1, nil
	}
	us := make([]Usage, tenants)
	for i := range us {
		done := make(chan error, 1)
		go func() { done <- us[i].Admit(context.Background(), tenantconfig.Limits{}, scan, 1, 1) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("tenant %d without limits waited for its count", i)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for running.Load() < MaxBackgroundScans && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := running.Load(); n != MaxBackgroundScans {
		t.Fatalf("%d background scans running, want %d", n, MaxBackgroundScans)
	}
	close(release)
	for i := range us {
		waitLoaded(t, &us[i])
	}
	if m := most.Load(); m != MaxBackgroundScans {
		t.Fatalf("at most %d background scans ran at once, want %d", m, MaxBackgroundScans)
	}
}

// A scan's result is the store at its revision: the writes recorded while
// it ran count on top of it if they are later, and not again if it saw
// them. (Before, the writes of a running scan were lost when its result
// replaced the counts; a paced scan of a large tenant runs for seconds.)
func TestWritesDuringAScanCountOnce(t *testing.T) {
	var u Usage
	ctx := context.Background()
	if err := u.Admit(ctx, tenantconfig.Limits{}, func(context.Context, Pace) (int64, int64, int64, error) { return 1, 10, 1, nil }, 0, 0); err != nil {
		t.Fatal(err)
	}
	waitLoaded(t, &u)
	u.mu.Lock()
	u.scanned = u.scanned.Add(-RescanAfter - time.Second)
	u.mu.Unlock()

	started, pace, paced, release := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	rescan := func(ctx context.Context, p Pace) (int64, int64, int64, error) {
		close(started)
		<-pace
		if err := p(ctx, 100, 1); err != nil { // the store at revision 100
			return 0, 0, 0, err
		}
		close(paced)
		<-release
		return 5, 50, 100, nil
	}
	if err := u.Admit(ctx, tenantconfig.Limits{}, rescan, 0, 0); err != nil {
		t.Fatal(err)
	}
	<-started
	// Before the scan knows its revision, and after.
	u.Add(1, 7, 99) // seen by the scan
	u.Add(1, 11, 101)
	close(pace)
	<-paced
	u.Add(-1, -3, 102)
	u.Add(1, 1000, 100) // seen by the scan
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		k, b, _ := u.Snapshot()
		if k == 5 && b == 58 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the rescan: %d keys %d bytes, want 5 and 58 (the scan's 5 and 50, +1 -1 keys and +11 -3 bytes after it)", k, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Background scans read no faster than the background scan rate, all of
// them together; a scan a write waits for is not held back.
func TestBackgroundScansArePaced(t *testing.T) {
	SetBackgroundScanRate(1000) // bytes per second, and a burst of as much
	defer SetBackgroundScanRate(DefaultBackgroundScanRate)
	ctx := context.Background()
	// Four parts of 500 bytes: the first two within the burst, the other
	// two a second's worth of the rate.
	reads := func(elapsed chan<- time.Duration) Scan {
		return func(ctx context.Context, pace Pace) (int64, int64, int64, error) {
			start := time.Now()
			for range 4 {
				if err := pace(ctx, 1, 500); err != nil {
					return 0, 0, 0, err
				}
			}
			elapsed <- time.Since(start)
			return 1, 1, 1, nil
		}
	}
	foreground := make(chan time.Duration, 1)
	var limited Usage
	if err := limited.Admit(ctx, tenantconfig.Limits{MaxKeys: 10}, reads(foreground), 1, 1); err != nil {
		t.Fatal(err)
	}
	if d := <-foreground; d > 500*time.Millisecond {
		t.Errorf("a first count that a write waits for took %v for 2000 bytes: paced", d)
	}
	background := make(chan time.Duration, 1)
	var unlimited Usage
	if err := unlimited.Admit(ctx, tenantconfig.Limits{}, reads(background), 1, 1); err != nil {
		t.Fatal(err)
	}
	if d := <-background; d < 900*time.Millisecond {
		t.Errorf("a background count read 2000 bytes in %v at 1000 bytes/s with a burst of 1000", d)
	}
}

// A write at or before the last scan's revision, recorded only after the
// scan ended, is not counted again: the scan saw it.
func TestAWriteRecordedLateIsNotCountedTwice(t *testing.T) {
	var u Usage
	if err := u.Admit(context.Background(), tenantconfig.Limits{MaxKeys: 100}, func(context.Context, Pace) (int64, int64, int64, error) { return 5, 50, 100, nil }, 1, 1); err != nil {
		t.Fatal(err)
	}
	u.Add(1, 10, 99)  // committed before the scan's read, recorded after it
	u.Add(1, 10, 101) // after it
	if k, b, _ := u.Snapshot(); k != 6 || b != 60 {
		t.Fatalf("counts %d keys %d bytes, want 6 and 60", k, b)
	}
}

// blockBackgroundScans takes every background scan token until the
// returned release.
func blockBackgroundScans(t *testing.T) (release func()) {
	t.Helper()
	for range MaxBackgroundScans {
		backgroundScans <- struct{}{}
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			for range MaxBackgroundScans {
				<-backgroundScans
			}
		})
	}
	t.Cleanup(release)
	return release
}

// A background scan waiting for its turn keeps none of the writes recorded
// meanwhile (it will read them), so hundreds of tenants queued for their
// recounts hold nothing that grows with their writes.
func TestAQueuedScanKeepsNoWrites(t *testing.T) {
	release := blockBackgroundScans(t)
	var u Usage
	scanned := make(chan struct{})
	scan := func(context.Context, Pace) (int64, int64, int64, error) { close(scanned); return 1, 1, 1_000_000, nil }
	if err := u.Admit(context.Background(), tenantconfig.Limits{}, scan, 0, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		u.Add(1, 1, int64(i+1))
	}
	u.mu.Lock()
	held := len(u.run.adds)
	u.mu.Unlock()
	if held != 0 {
		t.Errorf("a queued scan holds %d writes, want none", held)
	}
	release()
	<-scanned
	waitLoaded(t, &u)
	if k, b, _ := u.Snapshot(); k != 1 || b != 1 {
		t.Errorf("counts %d keys %d bytes, want the scan's 1 and 1", k, b)
	}
}

// A tenant given limits while its first count waits in the background
// queue has it read at once for its write, not after the queue.
func TestAWriteWaitingForAQueuedFirstCountHurriesIt(t *testing.T) {
	blockBackgroundScans(t)
	var u Usage
	scan := func(context.Context, Pace) (int64, int64, int64, error) { return 3, 30, 1, nil }
	if err := u.Admit(context.Background(), tenantconfig.Limits{}, scan, 0, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := u.Admit(ctx, tenantconfig.Limits{MaxKeys: 3}, scan, 1, 1); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("a write past 3 of 3 keys, its first count queued behind others: err = %v, want %v", err, ErrNoSpace)
	}
}

// A background scan cut short by compaction (a tenant too large to read
// at the background rate within the history the store keeps) is followed
// by one that is not paced, so the count is refreshed at all; the one
// after that is paced again.
func TestAScanAfterOneCutShortByCompactionIsNotPaced(t *testing.T) {
	SetBackgroundScanRate(1000) // bytes per second, and a burst of as much
	defer SetBackgroundScanRate(DefaultBackgroundScanRate)
	ctx := context.Background()
	type result struct {
		took time.Duration
		err  error
	}
	results := make(chan result, 1)
	compacted := true
	scan := func(ctx context.Context, pace Pace) (int64, int64, int64, error) {
		start := time.Now()
		for range 4 { // 2000 bytes: a second past the burst when paced
			if err := pace(ctx, 1, 500); err != nil {
				return 0, 0, 0, err
			}
		}
		var err error
		if compacted {
			err = fmt.Errorf("count tenant t usage: %w", rpctypes.ErrGRPCCompacted)
		}
		results <- result{time.Since(start), err}
		return 1, 1, 1, err
	}
	var u Usage
	wantScan := func(what string, paced bool) {
		t.Helper()
		u.mu.Lock()
		u.scanned = time.Time{} // due: the next write starts a background scan
		u.mu.Unlock()
		if err := u.Admit(ctx, tenantconfig.Limits{}, scan, 1, 1); err != nil {
			t.Fatal(err)
		}
		r := <-results
		switch {
		case paced && r.took < 900*time.Millisecond:
			t.Fatalf("%s read 2000 bytes in %v at 1000 bytes/s: not paced", what, r.took)
		case !paced && r.took > 500*time.Millisecond:
			t.Fatalf("%s took %v for 2000 bytes: paced", what, r.took)
		}
		for {
			u.mu.Lock()
			running := u.run != nil
			u.mu.Unlock()
			if !running {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	wantScan("the first background scan", true)
	compacted = false
	wantScan("the scan after one cut short by compaction", false)
	wantScan("the scan after one that ended", true)
}
