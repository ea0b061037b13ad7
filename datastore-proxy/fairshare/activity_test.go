package fairshare

import (
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
