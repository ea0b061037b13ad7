package tenantbackend

import "testing"

func TestNextScanPage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n, read int
		want    int64
	}{
		{"nothing read", 0, 0, scanPage},
		{"4 KiB values: the first page's size", 256, 256 * 4200, scanPage},
		{"1 KiB values", 256, 256 * 1024, 1024},
		{"tiny values: the most", 256, 256 * 10, maxScanPage},
		{"values past a page's bytes: still the first page's size", 10, 10 << 20, scanPage},
	} {
		if got := nextScanPage(tc.n, tc.read); got != tc.want {
			t.Errorf("%s: nextScanPage(%d, %d) = %d, want %d", tc.name, tc.n, tc.read, got, tc.want)
		}
	}
}
