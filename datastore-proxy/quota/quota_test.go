package quota

import (
	"context"
	"errors"
	"testing"

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
