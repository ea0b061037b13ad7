// Package quota accounts what each tenant stores and refuses writes past
// its limits.
//
// Contract: Usage counts a tenant's keys and bytes (key + value length).
// It is loaded by scanning the tenant's space the first time a write needs
// it, and rescanned when older than RescanAfter (keys can also vanish
// without passing through the proxy: kine expires TTL keys itself). A scan
// reads all the tenant's values, so only a tenant with a key or byte limit
// waits for its first one, and one scan serves every write that waits for
// it; a tenant without limits is counted in the background (for its
// metrics), as is every rescan, and at most MaxBackgroundScans of those
// run at once in the proxy, reading no more than the background scan rate
// (SetBackgroundScanRate) between them: a restart under load does not send
// every tenant's whole space through the proxy at the same moment, and
// hundreds of tenants' rescans cost the store a bounded read rate however
// much they hold (a count then gets older than RescanAfter); a scan cut
// short by compaction is followed by one that is not paced. A write that
// finds the count stale is checked against the count it has. A scan reads
// at one revision, and the writes recorded (Add) while it runs with a
// later revision are added to its result, while a write at or before the
// last scan's revision, recorded late, is not added again: a long scan
// loses none and counts none twice. A write waiting for a first count
// that is queued or paced in the background has it read at once. Admit is asked before a write with
// what it adds; concurrent writers can overshoot a limit by what is in
// flight between Admit and Add, never more. A refused write gets etcd's
// "database space exceeded", which kube-apiserver reports for that
// tenant's request only.
//
// Two kinds of writes leave the counts in doubt. A write whose outcome is
// unknown (its caller's deadline passed, or the store went away, after it
// was sent: it may have been applied) is counted as applied (Unsure), and
// the next write starts a rescan in the background: writes that time out
// one after another cannot each slip past the limits uncounted. An update
// whose change in bytes is not known (a tenant without a byte limit is not
// read before its updates) leaves the byte count in doubt (Uncounted):
// once the tenant has a byte limit, its next write waits for a count, as a
// first one. A scan that starts after such writes ends the doubt.
package quota

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/tenantconfig"
)

// RescanAfter is how old a count may get before the next write rescans.
const RescanAfter = 2 * time.Minute

// ErrNoSpace is what a write past a limit gets.
var ErrNoSpace = rpctypes.ErrGRPCNoSpace

// errNotCounted is what a write of a tenant with limits gets when its
// counts could not be loaded for it (scans kept starting before updates
// that left them in doubt); it may try again.
var errNotCounted = status.Error(codes.Unavailable, "kplex: the tenant's usage is being counted; try again")

// Scan counts the keys and bytes a tenant stores at revision rev, calling
// pace with that revision and the bytes of each part it has read before
// it reads the next (not after the last). All its parts are read at rev:
// a scan that cannot (its revision compacted meanwhile) fails, and a
// later write starts another. The proxy keeps at least a compaction
// interval of history (5 minutes by default; etcdbackend's compactLoop,
// kine's on SQL), so a scan shorter than that does not fail this way, and
// the next scan after one that did is not paced (startLocked).
type Scan func(ctx context.Context, pace Pace) (keys, bytes, rev int64, err error)

// Pace holds a scan at revision rev back until it may read on after n
// more bytes; an error (its context's) ends the scan.
type Pace func(ctx context.Context, rev int64, n int) error

// DefaultBackgroundScanRate is the bytes per second that background scans
// read between them unless SetBackgroundScanRate says otherwise.
const DefaultBackgroundScanRate = 8 << 20

// backgroundRate paces every background scan of the proxy (nil: no bound).
var backgroundRate atomic.Pointer[rate.Limiter]

func init() { SetBackgroundScanRate(DefaultBackgroundScanRate) }

// SetBackgroundScanRate sets the bytes per second that background scans
// read between them, with a burst of as many; <= 0: no bound.
func SetBackgroundScanRate(bytesPerSecond int) {
	if bytesPerSecond <= 0 {
		backgroundRate.Store(nil)
		return
	}
	backgroundRate.Store(rate.NewLimiter(rate.Limit(bytesPerSecond), bytesPerSecond))
}

// paceBackground waits for n bytes of the background scan rate.
func paceBackground(ctx context.Context, _ int64, n int) error {
	lim := backgroundRate.Load()
	if lim == nil {
		return ctx.Err()
	}
	for n > 0 {
		step := min(n, lim.Burst())
		if err := lim.WaitN(ctx, step); err != nil {
			return err
		}
		n -= step
	}
	return nil
}

// paceNone lets a scan read on at once (a writer waits for it).
func paceNone(ctx context.Context, _ int64, _ int) error { return ctx.Err() }

// MaxBackgroundScans is how many background scans run at once, over all
// tenants.
const MaxBackgroundScans = 2

// backgroundScans holds a token for each background scan running.
var backgroundScans = make(chan struct{}, MaxBackgroundScans)

// Usage is one tenant's stored keys and bytes.
type Usage struct {
	mu      sync.Mutex
	scanned time.Time
	rev     int64    // the revision of the last scan
	run     *scanRun // the scan running, nil when none
	keys    int64
	bytes   int64
	// cutShort: the last scan failed because its revision was compacted
	// before it ended, so the next one reads unpaced (startLocked).
	cutShort bool
	// doubt counts the writes that left the counts in doubt (Unsure,
	// Uncounted); settled is what it was when the last scan to succeed
	// started reading.
	doubt   doubt
	settled doubt
}

// doubt counts the writes of each kind that left the counts in doubt.
type doubt struct{ unsure, uncounted uint64 }

// scanRun is one scan; done is closed when err is set. The writes
// recorded while it reads (Usage.mu; before it starts reading, it will
// see them) are kept in adds until its revision is known (rev), then only
// their sum past it (later). urgent is closed when a write waits for it,
// which then reads unpaced.
type scanRun struct {
	done    chan struct{}
	err     error
	urgent  chan struct{}
	hurry   sync.Once
	reading bool
	doubt   doubt // Usage's when it started reading
	adds    []add
	rev     int64
	later   add
}

// add is one write's change to the counts, at its revision.
type add struct{ rev, keys, bytes int64 }

// record takes a write recorded while r runs.
func (r *scanRun) record(a add) {
	switch {
	case !r.reading:
	case r.rev == 0:
		r.adds = append(r.adds, a)
	case a.rev > r.rev:
		r.later.keys += a.keys
		r.later.bytes += a.bytes
	}
}

// at learns r's revision: of the writes recorded so far, only the later
// ones' sum is kept.
func (r *scanRun) at(rev int64) {
	if r.rev != 0 {
		return
	}
	r.rev = rev
	for _, a := range r.adds {
		r.record(a)
	}
	r.adds = nil
}

// scanTimeout bounds a scan that a write waits for; a background scan,
// paced, has longer. The writers waiting give up on their own deadlines,
// and the scan goes on for the next ones: a bound shorter than the time a
// large tenant takes to read (a minute was: about a GiB on a slow SQL
// store) would leave it with no count after a restart, and so no writes,
// each write starting a scan that could never end. The store's history
// (a compaction interval) is what bounds a scan in the end.
const (
	scanTimeout           = 10 * time.Minute
	backgroundScanTimeout = 30 * time.Minute
)

// Snapshot returns the counts and whether they were ever loaded.
func (u *Usage) Snapshot() (keys, bytes int64, loaded bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.keys, u.bytes, !u.scanned.IsZero()
}

// Scanning reports whether a count is running.
func (u *Usage) Scanning() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.run != nil
}

// Admit loads or refreshes the counts when needed and checks that adding
// keys and bytes stays within l.
func (u *Usage) Admit(ctx context.Context, l tenantconfig.Limits, scan Scan, keys, bytes int64) error {
	limited := l.MaxKeys > 0 || l.MaxBytes > 0
	u.mu.Lock()
	// A count is needed first when there is none, or when the byte limit
	// would be checked against bytes in doubt. A scan already running is
	// hurried and waited for; one that started reading before the doubt
	// (stale) does not settle it, and one more is. A scan that fails is
	// the write's error, and a write never passes without a count.
	for waited := 0; limited && (u.scanned.IsZero() || l.MaxBytes > 0 && u.doubt.uncounted != u.settled.uncounted); waited++ {
		if waited == 3 {
			if u.scanned.IsZero() {
				u.mu.Unlock()
				return errNotCounted
			}
			break // counted, bytes still in doubt: updates keep coming uncounted
		}
		run := u.run
		if run == nil {
			run = u.startLocked(ctx, scan, false)
		}
		stale := l.MaxBytes > 0 && run.reading && run.doubt.uncounted != u.doubt.uncounted
		run.hurry.Do(func() { close(run.urgent) })
		u.mu.Unlock()
		select {
		case <-run.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if run.err != nil && !stale {
			return run.err
		}
		u.mu.Lock()
	}
	loaded := !u.scanned.IsZero()
	if u.run == nil && (!loaded || time.Since(u.scanned) > RescanAfter || u.doubt.unsure != u.settled.unsure) {
		u.startLocked(ctx, scan, true)
	}
	defer u.mu.Unlock()
	if keys > 0 && l.MaxKeys > 0 && u.keys+keys > l.MaxKeys {
		return ErrNoSpace
	}
	if bytes > 0 && l.MaxBytes > 0 && u.bytes+bytes > l.MaxBytes {
		return ErrNoSpace
	}
	return nil
}

// startLocked starts a scan whose result, with the writes recorded after
// its revision, replaces the counts (on failure the old counts stay, and a
// later write tries again). It outlives ctx, the first asker's, but keeps
// its values (trace context). A background scan first waits for one of
// the MaxBackgroundScans tokens, and is paced, unless a write comes to
// wait for it. A scan that follows one cut short by compaction is not
// paced: the store keeps a compaction interval of history (5 minutes by
// default), and a tenant too large to read at the background rate within
// it would otherwise never be counted again, so that keys expired with
// their leases would count against its limits for good.
func (u *Usage) startLocked(ctx context.Context, scan Scan, background bool) *scanRun {
	run := &scanRun{done: make(chan struct{}), urgent: make(chan struct{})}
	u.run = run
	paced := background && !u.cutShort
	go func() {
		wait, timeout := Pace(paceNone), scanTimeout
		if paced {
			wait = paceBackground
		}
		if background {
			timeout = backgroundScanTimeout
			select {
			case backgroundScans <- struct{}{}:
				defer func() { <-backgroundScans }()
			case <-run.urgent:
			}
		}
		pace := func(ctx context.Context, rev int64, n int) error {
			u.mu.Lock()
			run.at(rev)
			u.mu.Unlock()
			select {
			case <-run.urgent:
				return ctx.Err()
			default:
				return wait(ctx, rev, n)
			}
		}
		u.mu.Lock()
		run.reading, run.doubt = true, u.doubt
		u.mu.Unlock()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		k, b, rev, err := scan(sctx, pace)
		cancel()
		u.mu.Lock()
		u.run = nil
		u.cutShort = errors.Is(err, rpctypes.ErrGRPCCompacted)
		if err == nil {
			run.at(rev)
			u.keys, u.bytes, u.rev, u.scanned = k+run.later.keys, b+run.later.bytes, rev, time.Now()
			u.settled = run.doubt
		}
		run.err = err
		u.mu.Unlock()
		close(run.done)
	}()
	return run
}

// Add records a write that happened at revision rev.
func (u *Usage) Add(keys, bytes, rev int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.addLocked(keys, bytes, rev)
}

func (u *Usage) addLocked(keys, bytes, rev int64) {
	if rev != 0 && rev <= u.rev {
		return // the last scan counted it
	}
	if u.run != nil {
		u.run.record(add{rev, keys, bytes})
	}
	if u.scanned.IsZero() {
		return // not loaded: the first scan counts it, or its run adds it
	}
	u.keys += keys
	u.bytes += bytes
}

// Unsure records a write whose outcome is unknown: it may have been
// applied, at a revision not known. It is counted as applied (a change
// that frees keys or bytes as not applied), later than any scan, and the
// next write starts a rescan, which settles it.
func (u *Usage) Unsure(keys, bytes int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.doubt.unsure++ // with the count, so that a scan sees both or neither
	u.addLocked(max(keys, 0), max(bytes, 0), math.MaxInt64)
}

// Uncounted records an update whose change in bytes is not known: the
// byte count is in doubt until a scan that starts after it, and a write
// checked against a byte limit waits for one (Admit).
func (u *Usage) Uncounted() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.doubt.uncounted++
}
