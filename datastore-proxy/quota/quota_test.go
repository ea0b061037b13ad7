package quota

import (
	"context"
	"errors"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/tenantconfig"
)

func TestAdmit(t *testing.T) {
	scans := 0
	scan := func(context.Context) (int64, int64, error) { scans++; return 8, 800, nil }
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
	u.Add(5, 5) // ignored before the first scan
	if _, _, loaded := u.Snapshot(); loaded {
		t.Fatal("loaded before any scan")
	}
	before := scans
	_ = u.Admit(context.Background(), tenantconfig.Limits{}, scan, 0, 0)
	_ = u.Admit(context.Background(), tenantconfig.Limits{}, scan, 0, 0)
	if scans != before+1 {
		t.Fatalf("scanned %d times, want once until RescanAfter", scans-before)
	}
	u.Add(1, 10)
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
	if err := u.Admit(ctx, tenantconfig.Limits{}, func(context.Context) (int64, int64, error) { return 3, 30, nil }, 1, 10); err != nil {
		t.Fatal(err)
	}
	u.mu.Lock()
	u.scanned = u.scanned.Add(-RescanAfter - time.Second)
	u.mu.Unlock()

	release, started := make(chan struct{}), make(chan struct{}, 10)
	slow := func(context.Context) (int64, int64, error) {
		started <- struct{}{}
		<-release
		return 7, 70, nil
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
