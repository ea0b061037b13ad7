package quota

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/tenantconfig"
)

// waitCounts waits until u holds keys and bytes.
func waitCounts(t *testing.T, u *Usage, keys, bytes int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		k, b, _ := u.Snapshot()
		if k == keys && b == bytes {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts %d keys %d bytes, want %d and %d", k, b, keys, bytes)
		}
		time.Sleep(time.Millisecond)
	}
}

// A write whose outcome is unknown counts as applied, so that writes that
// time out one after another cannot each pass the limits uncounted (they
// did: only a write that succeeded was counted, and one applied after its
// caller gave up was not, until the next rescan, two minutes or more
// away). The next write starts a rescan, which settles the count.
func TestAWriteOfUnknownOutcomeCountsUntilARescan(t *testing.T) {
	ctx := context.Background()
	var stored atomic.Int64 // keys the store holds
	stored.Store(3)
	var scans atomic.Int64
	scan := func(context.Context, Pace) (int64, int64, int64, error) {
		scans.Add(1)
		n := stored.Load()
		return n, n * 10, 1, nil
	}
	limits := tenantconfig.Limits{MaxKeys: 5}
	var u Usage
	if err := u.Admit(ctx, limits, scan, 1, 10); err != nil {
		t.Fatal(err)
	}
	// Two writes that timed out: one was applied, one was not.
	stored.Add(1)
	u.Unsure(1, 10)
	u.Unsure(1, 10)
	if err := u.Admit(ctx, limits, scan, 1, 10); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("a sixth key, with 3 stored and 2 writes of unknown outcome: err = %v, want %v", err, ErrNoSpace)
	}
	// That write started a rescan in the background, which found 4.
	waitCounts(t, &u, 4, 40)
	if n := scans.Load(); n != 2 {
		t.Fatalf("%d scans, want the first and one rescan", n)
	}
	if err := u.Admit(ctx, limits, scan, 1, 10); err != nil {
		t.Fatalf("a fifth key after the rescan: %v", err)
	}
	if n := scans.Load(); n != 2 {
		t.Fatalf("%d scans, want no more once settled", n)
	}
	// A write that frees keys or bytes, of unknown outcome, frees nothing.
	u.Unsure(-1, -10)
	waitCounts(t, &u, 4, 40)
}

// Updates whose change in bytes was not counted (a tenant without a byte
// limit is not read before its updates) leave the bytes in doubt: a write
// checked against a byte limit given later waits for a count, rather than
// being checked against bytes that may be far off (it was, until a
// background rescan, paced, ended).
func TestBytesInDoubtAreCountedBeforeAByteLimit(t *testing.T) {
	ctx := context.Background()
	var stored atomic.Int64
	stored.Store(100)
	var scans atomic.Int64
	scan := func(context.Context, Pace) (int64, int64, int64, error) {
		scans.Add(1)
		return 1, stored.Load(), 1, nil
	}
	var u Usage
	if err := u.Admit(ctx, tenantconfig.Limits{MaxKeys: 10}, scan, 1, 100); err != nil {
		t.Fatal(err)
	}
	// Updates grow the value to 600 bytes, uncounted.
	stored.Store(600)
	u.Uncounted()
	// A key limit alone does not wait for it.
	if err := u.Admit(ctx, tenantconfig.Limits{MaxKeys: 10}, scan, 1, 100); err != nil {
		t.Fatal(err)
	}
	if n := scans.Load(); n != 1 {
		t.Fatalf("%d scans with a key limit only, want 1", n)
	}
	// Now a byte limit of 500: the write waits for a count of 600.
	if err := u.Admit(ctx, tenantconfig.Limits{MaxKeys: 10, MaxBytes: 500}, scan, 0, 1); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("one byte more over 600 stored against 500: err = %v, want %v", err, ErrNoSpace)
	}
	if n := scans.Load(); n != 2 {
		t.Fatalf("%d scans, want one more for the byte limit", n)
	}
	if err := u.Admit(ctx, tenantconfig.Limits{MaxKeys: 10, MaxBytes: 500}, scan, 0, -200); err != nil {
		t.Fatalf("a write that frees bytes: %v", err)
	}
	if n := scans.Load(); n != 2 {
		t.Fatalf("%d scans, want no more once counted", n)
	}
}

// A write checked against a byte limit that finds a background rescan
// reading from before bytes came in doubt hurries it, then counts again:
// it waited for the paced scan at its pace (a tenant's writes stalled for
// as long as its rescan took at the background rate, minutes for a large
// tenant).
func TestAWriteHurriesAScanFromBeforeTheDoubt(t *testing.T) {
	var u Usage
	started := make(chan struct{}, 10)
	var scans atomic.Int64
	scan := func(ctx context.Context, pace Pace) (int64, int64, int64, error) {
		scans.Add(1)
		started <- struct{}{}
		for range 20 { // 160 MiB at the background rate: 20 s unless hurried
			if err := pace(ctx, 1, 8<<20); err != nil {
				return 0, 0, 0, err
			}
		}
		return 1, 10, 1, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	// No limits: the first count runs in the background, paced.
	if err := u.Admit(ctx, tenantconfig.Limits{}, scan, 1, 10); err != nil {
		t.Fatal(err)
	}
	<-started
	u.Uncounted() // an update, its bytes not known, while it reads
	begin := time.Now()
	if err := u.Admit(ctx, tenantconfig.Limits{MaxBytes: 1000}, scan, 0, 10); err != nil {
		t.Fatalf("a write under a byte limit given meanwhile: %v (after %v)", err, time.Since(begin))
	}
	if n := scans.Load(); n != 2 {
		t.Errorf("%d scans, want the paced one and one after the doubt", n)
	}
}
