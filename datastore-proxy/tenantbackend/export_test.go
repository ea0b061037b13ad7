package tenantbackend

import (
	"context"

	"kplex.dev/datastore-proxy/quota"
)

// Scan is the tenant's usage count (scan), for the tests.
func (b *Backend) Scan(ctx context.Context, pace quota.Pace) (keys, bytes, rev int64, err error) {
	return b.scan(ctx, pace)
}

// ScanPage is how many keys a scan's first page holds.
const ScanPage = scanPage

// MaxScanPage is the most keys a page of a scan or a range delete holds.
const MaxScanPage = maxScanPage
