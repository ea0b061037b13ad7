package fairshare

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestForgetOlder: past 64 tenants, those a window old or more go, at
// most once a window.
func TestForgetOlder(t *testing.T) {
	now := time.Unix(1000, 0)
	const window = time.Second
	tests := []struct {
		name      string
		fresh     int // seen just now
		stale     int // seen a window ago
		lastSweep time.Time
		want      int
	}{
		{"64 or fewer: kept", 10, 54, time.Time{}, 64},
		{"past 64: the stale go", 10, 60, time.Time{}, 10},
		{"swept within the window: kept for now", 10, 60, now.Add(-window / 2), 70},
		{"swept a window ago: the stale go", 10, 60, now.Add(-window), 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]time.Time{}
			for i := range tt.fresh {
				m[fmt.Sprint("fresh", i)] = now
			}
			for i := range tt.stale {
				m[fmt.Sprint("stale", i)] = now.Add(-window)
			}
			pruned := tt.lastSweep
			forgetOlder(m, now, window, &pruned)
			if len(m) != tt.want {
				t.Fatalf("%d tenants left, want %d", len(m), tt.want)
			}
		})
	}
}

// A tenant whose one request runs long in one scheduler is active in the
// other that shares the Activity: a tenant flooding that one is held to
// its cap there. It was taken for alone once the long request was older
// than ActiveWindow, and given every slot.
func TestATenantWithALongRequestIsActiveInTheOtherScheduler(t *testing.T) {
	activity := NewActivity()
	now := time.Unix(1000, 0)
	activity.now = func() time.Time { return now }
	writes, reads := New(1, 1, activity), New(4, 1, activity)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	release, err := writes.Acquire(ctx, "b") // b's long write
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	now = now.Add(2 * ActiveWindow)
	first, err := reads.Acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer first()
	short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
	defer stop()
	if second, err := reads.Acquire(short, "a"); err == nil {
		second()
		t.Fatal("a second read of a beside b's write under way was let past a's cap of 1")
	}
}
