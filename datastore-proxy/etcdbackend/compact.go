package etcdbackend

import (
	"context"
	"log/slog"
	"time"
)

// compactLoop compacts the shared history every interval, keeping the last
// minRetain revisions. Tenants' compaction requests never reach etcd
// (tenantbackend.Backend.Compact), so this is the only compaction.
func (b *Backend) compactLoop(ctx context.Context) {
	t := time.NewTicker(b.compactInterval)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rev, err := b.CurrentRevision(ctx)
		if err != nil {
			slog.Warn("compaction: no revision", "err", err)
			continue
		}
		target := rev - b.minRetain
		if target <= last || target <= 0 {
			continue
		}
		if _, err := b.Compact(ctx, target); err != nil {
			slog.Warn("compaction failed", "revision", target, "err", err)
			continue
		}
		last = target
	}
}
