package etcdbackend

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// compactLoop compacts the shared history every interval, as
// kube-apiserver compacts its own etcd and kine its database: to the
// revision that was current an interval or more ago, and never within the
// last minRetain revisions. So at least an interval of history is kept
// however many tenants write: a tenant's watch that resumes after a pause
// shorter than that finds its revision rather than "compacted" (and a
// relist of everything), and a usage recount, which reads a tenant's
// space at one revision (quota), is not cut short by a compaction within
// that time. (Keeping minRetain revisions alone, as before, kept seconds
// of history on a store hundreds of tenants write to.) Tenants'
// compaction requests never reach etcd (tenantbackend.Backend.Compact),
// so this is the only compaction.
func (b *Backend) compactLoop(ctx context.Context) {
	t := time.NewTicker(b.compactInterval)
	defer t.Stop()
	var c compactor
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := b.compactStep(ctx, &c)
		if ctx.Err() != nil {
			return
		}
		// The next tick an interval after this sighting, not after this
		// tick: one that came a little early would compact nothing.
		t.Reset(b.compactInterval)
		if err != nil {
			slog.Warn("compaction failed", "err", err)
		}
	}
}

// compactStepTimeout bounds each call of a compaction step, so that a hung
// call does not stop compaction for good.
const compactStepTimeout = 30 * time.Second

// compactStep reads the current revision, records it with c, and compacts
// as far as c allows, recording that too.
func (b *Backend) compactStep(ctx context.Context, c *compactor) error {
	cctx, cancel := context.WithTimeout(ctx, compactStepTimeout)
	defer cancel()
	rev, err := b.CurrentRevision(cctx)
	if err != nil {
		return fmt.Errorf("current revision: %w", err)
	}
	target, ok := c.sighted(rev, time.Now(), b.compactInterval, b.minRetain)
	if !ok {
		return nil
	}
	if _, err := b.Compact(cctx, target); err != nil {
		return fmt.Errorf("compact to revision %d: %w", target, err)
	}
	c.compacted = target
	return nil
}

// compactor decides how far compaction may go.
type compactor struct {
	seen      int64     // a revision that was current at seenAt
	seenAt    time.Time // zero: none yet
	compacted int64     // the last revision compacted to
}

// sighted records that rev is current at now (taken after rev was read,
// so that every write begun after now has a later revision), and returns
// the revision to compact to, if any: the one seen an interval or more
// ago, at most rev-minRetain, past the last one compacted to. A sighting
// an interval old is then replaced by this one; a younger one is kept
// until it is old enough, so a tick that comes early compacts nothing.
func (c *compactor) sighted(rev int64, now time.Time, interval time.Duration, minRetain int64) (int64, bool) {
	if c.seenAt.IsZero() {
		c.seen, c.seenAt = rev, now
		return 0, false
	}
	if now.Sub(c.seenAt) < interval {
		return 0, false
	}
	target := min(c.seen, rev-minRetain)
	c.seen, c.seenAt = rev, now
	return target, target > c.compacted
}
