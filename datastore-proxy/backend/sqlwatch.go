package backend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/k3s-io/kine/pkg/drivers/generic"
	"github.com/k3s-io/kine/pkg/logstructured"
	"github.com/k3s-io/kine/pkg/server"

	"kplex.dev/datastore-proxy/tenantbackend"
)

// sqlBackend is one of kine's SQL backends that can also watch a single
// key range (tenantbackend.RangeWatcher).
//
// Why: kine's own Watch catches up from a past revision by reading every
// row written since, whatever the key. On a store shared by many tenants
// (and with tenant apiservers that run without a watch cache, so every
// informer is a watch here) each re-established watch then read the whole
// store's recent history: with 20 busy tenants the proxy grew to 16.8 GiB
// and stalled (docs/benchmarks.md). WatchRange reads the rows of the
// watch's own range only, with kine's own range query.
type sqlBackend struct {
	server.Backend
	log logstructured.Log
	// dialect reads a watch's catch-up (catchup.go); compacted is the
	// highest compact revision it has read (it lags the log's).
	dialect   server.Dialect
	compacted atomic.Int64
	// db and idsAfter read the log's ids (gaps.go).
	db       *sql.DB
	idsAfter string
	// polled is where kine's poller is known to be: every id at or below
	// it has been passed to the live watches, filled, or skipped for good
	// (gaps.go). It only ever lags the poller.
	polled atomic.Int64
	// maxLease is the longest lease (TTL) the kind's lease column holds;
	// 0: no bound below etcd's own (tenantbackend refuses longer ones).
	maxLease int64
	// outOfOrder is set where rows can commit out of id order (PostgreSQL
	// and MySQL): lists at the latest revision read at a settled one
	// (settle.go).
	outOfOrder bool
}

// newSQLBackend reaches the log beneath kine's LogStructured b and the
// database beneath the log, which kine v0.17 does not export, and returns b
// able to watch key ranges, with kine's SQL dialect (for the set-up of its
// kind, before b starts). When that is not possible (another kine layout),
// the error says why.
func newSQLBackend(b server.Backend, kind string) (*sqlBackend, *generic.Generic, error) {
	log, g, err := kineDialect(b)
	if err != nil {
		return nil, nil, err
	}
	if err := mendDialect(log, g); err != nil {
		return nil, nil, err
	}
	if log, err = checkLists(b.(*logstructured.LogStructured), log, g); err != nil {
		return nil, nil, err
	}
	sb := &sqlBackend{Backend: b, log: log, dialect: g, db: g.DB, idsAfter: idsAfterQuery(kind)}
	if kind == "postgres" || kind == "mysql" {
		sb.maxLease = math.MaxInt32 // kine's lease INTEGER column
		sb.outOfOrder = true
	}
	return sb, g, nil
}

// served starts kine's poller now, while the log is quiet, rather than on a
// tenant's first watch, and follows it for as long as ctx lasts (polled;
// gaps.go says why both), and returns the backend tenants are served from:
// with its kind's guard on keys.
func (b *sqlBackend) served(ctx context.Context, wg *sync.WaitGroup, kind string) (server.Backend, error) {
	// Read before the poller starts, which reads it again: no higher than
	// where the poller starts, and so settled.
	start, err := b.log.CurrentRevision(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the log's position: %w", err)
	}
	b.polled.Store(start)
	live := b.log.Watch(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for live != nil && ctx.Err() == nil {
			for batch := range live {
				b.polled.Store(max(b.polled.Load(), batch.CurrentRev))
			}
			// Dropped as a slow reader (it never should be): batches
			// missed leave polled behind, which is safe.
			live = b.log.Watch(ctx)
		}
	}()
	switch kind {
	case "postgres":
		return textKeys{b}, nil // keys as its text column holds them (pgkeys.go)
	case "mysql":
		return binaryKeys{b}, nil // no key longer than its column (keys.go)
	}
	return b, nil
}

// kineDialect reaches the log beneath kine's LogStructured b and the SQL
// dialect beneath the log, which kine v0.17 does not export.
func kineDialect(b server.Backend) (logstructured.Log, *generic.Generic, error) {
	ls, ok := b.(*logstructured.LogStructured)
	if !ok {
		return nil, nil, fmt.Errorf("kine backend is a %T, not a LogStructured", b)
	}
	log, err := field[logstructured.Log](reflect.ValueOf(ls).Elem(), "log")
	if err != nil || log == nil {
		return nil, nil, fmt.Errorf("kine's LogStructured: %w", err)
	}
	sl := reflect.ValueOf(log)
	if sl.Kind() != reflect.Pointer || sl.Elem().Kind() != reflect.Struct {
		return nil, nil, fmt.Errorf("kine's log is a %T, not a pointer to a struct", log)
	}
	d, err := field[server.Dialect](sl.Elem(), "d")
	if err != nil {
		return nil, nil, fmt.Errorf("kine's log: %w", err)
	}
	g, ok := d.(*generic.Generic)
	if !ok || g.DB == nil {
		return nil, nil, fmt.Errorf("kine's dialect is a %T, not a generic one with a database", d)
	}
	return log, g, nil
}

// field reads the unexported field name of the struct v.
func field[T any](v reflect.Value, name string) (T, error) {
	f, err := fieldOf[T](v, name)
	if err != nil {
		var zero T
		return zero, err
	}
	return f.Interface().(T), nil
}

// fieldOf is the unexported field name, of type T, of the addressable
// struct v, as a value that can be read and set.
func fieldOf[T any](v reflect.Value, name string) (reflect.Value, error) {
	f := v.FieldByName(name)
	if !f.IsValid() || f.Type() != reflect.TypeFor[T]() {
		return reflect.Value{}, fmt.Errorf("no field %s of type %s", name, reflect.TypeFor[T]())
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem(), nil
}

// sqlWatchSlack is how many batches with events a range watch on SQL
// holds for a slow reader; past it the watch ends itself, and its client
// watches again from its last revision. They are held in a queue that
// grows as it needs: a channel of that many held 6.4 KiB for every idle
// watch. The broadcaster hands every watch every batch of the whole store,
// most with none of its events: those take no place (merge), and the live
// feed is read from the subscription on, during the catch-up too.
// Otherwise other tenants' writes filled a watch's buffer while its
// catch-up read ran, or while its stream sent another watch's large
// response, and kine ended the watch (a Canceled with no reason, which
// etcd's client takes for the end of the watch).
//
// The feed is read all the time, the queue full or not: kine's
// broadcaster skips a batch for a subscriber whose buffer (100) is full
// and closes the subscription only later, from a goroutine of its own, so
// a batch after the skipped one could still arrive, and the skipped
// batch's events were lost for good (the watch stopped reading at the
// slack and left that buffer to fill, until a review found it). Ending
// the watch at the slack is a clean cut: every event up to it was passed
// on.
const sqlWatchSlack = 300

// sqlCatchUpSlack is how many of its events a range watch on SQL holds
// while its catch-up is read, merged into one batch: as many as
// sqlWatchSlack full batches of kine's poller (500). A busy range has a
// batch for every write, and counted in batches a catch-up that took
// longer than 300 writes to the range ended the watch, and again each
// time its client watched again, so that it never started.
const sqlCatchUpSlack = sqlWatchSlack * 500

// WatchRange is kine's LogStructured.Watch with the catch-up read and the
// live events limited to [key, end) (end "": the single key), made the
// tenant's with h.Own on the way (kine's broadcaster hands every
// subscriber the same events; h.Own copies what it changes).
func (b *sqlBackend) WatchRange(ctx context.Context, key, end string, revision int64, h tenantbackend.WatchHooks) server.WatchResult {
	// Subscribe first so that nothing written during the catch-up is
	// missed, and read the subscription from then on (follow).
	ctx, cancel := context.WithCancel(ctx)
	live := b.log.Watch(ctx)

	// Room for the first batch only: the queue of follow is the buffer.
	result := make(chan server.EventBatch, 1)
	errc := make(chan error, 1)
	wr := server.WatchResult{Eventc: result, Errorc: errc}
	caughtUp := make(chan int64, 1)
	// The catch-up includes the start revision itself.
	if revision > 1 {
		revision--
	}
	go follow(ctx, cancel, live, caughtUp, result, key, end, revision, h)

	var batch server.EventBatch
	var err error
	if revision == 0 {
		wr.CurrentRevision, err = b.log.CurrentRevision(ctx)
		batch.CurrentRev = wr.CurrentRevision
	} else {
		batch, err = b.catchUp(ctx, key, end, revision)
		if errors.Is(err, server.ErrFutureRev) {
			// etcd's watch from a revision it has not reached waits for
			// it: nothing to read yet, the log's revision to start from,
			// and follow drops the events before the start.
			batch, err = server.EventBatch{CurrentRev: batch.CurrentRev}, nil
		}
		wr.CurrentRevision = batch.CurrentRev
	}
	if err != nil {
		switch {
		case errors.Is(err, context.Canceled):
		case errors.Is(err, server.ErrCompacted):
			// after read it, with the rows, and recorded it.
			wr.CompactRevision = b.compacted.Load()
		default:
			errc <- err
		}
		cancel()
		// Nothing of a failed catch-up, not even its revision: the watch
		// has not sent everything up to it, and a progress answer at it
		// before the watch's end would make its client watch again from
		// past events it never got.
		batch = server.EventBatch{}
	}
	result <- tenantbackend.OwnBatch(batch, h.Own)
	caughtUp <- wr.CurrentRevision
	return wr
}

// follow reads a watch's live feed from its subscription until the
// broadcaster closes it, and passes its batches of [key, end) on to
// result once the catch-up is there: caughtUp gets the catch-up's
// revision right after its batch is in result (live events at or below
// it, or at or below after, where the watch's start is further on, are
// dropped: liveBatch). Batches with none of the watch's events are merged
// into the last one queued.
func follow(ctx context.Context, cancel context.CancelFunc, live <-chan server.EventBatch, caughtUp <-chan int64, result chan<- server.EventBatch, key, end string, after int64, h tenantbackend.WatchHooks) {
	defer cancel()
	defer close(result)
	var queue []server.EventBatch
	add := func(batch server.EventBatch) {
		if n := len(queue); n > 0 && len(batch.Events) == 0 {
			queue[n-1].CurrentRev = max(queue[n-1].CurrentRev, batch.CurrentRev)
			return
		}
		queue = append(queue, batch)
	}
	// Until the catch-up is there, what comes is held in one batch, the
	// events in id order, and counted in events (sqlCatchUpSlack).
	held := 0
	hold := func(batch server.EventBatch) {
		held += len(batch.Events)
		if len(queue) == 0 {
			queue = append(queue, batch)
			return
		}
		queue[0].CurrentRev = max(queue[0].CurrentRev, batch.CurrentRev)
		queue[0].Events = append(queue[0].Events, batch.Events...)
	}
	rev := int64(-1) // until the catch-up's is known
	in := live       // read to the end: the broadcaster closes it
	// left is how many batches are still to be taken before the watch
	// ends, as one taken with kine's buffer full or one short of it is
	// where a skip may be (below); -1: not ending.
	left := -1
	for in != nil || len(queue) > 0 || rev < 0 {
		if in != nil && (len(queue) >= sqlWatchSlack || held > sqlCatchUpSlack) {
			// Fallen behind: ends here, before anything unread (above).
			in = nil
			cancel()
		}
		recv := in
		var out chan<- server.EventBatch
		var head server.EventBatch
		start := caughtUp
		if rev >= 0 {
			start = nil
			if len(queue) > 0 {
				out, head = result, queue[0]
			}
		}
		select {
		case batch, ok := <-recv:
			if !ok {
				in = nil
				continue
			}
			// kine's broadcaster skips a batch for a subscriber whose
			// buffer is full and closes the subscription later, from a
			// goroutine of its own: a later batch could still come. A
			// skip happens with the buffer full, and it stays full until
			// the next batch is taken: so when one is taken with the
			// buffer at most one short of full after it, only the
			// batches in it then are taken on (each sent before any
			// skip), and the watch ends after them, a clean cut.
			switch {
			case left > 0:
				left--
			case left < 0 && cap(in) > 0 && len(in) >= cap(in)-1:
				left = cap(in) - 1
			}
			if left == 0 {
				in = nil
				cancel()
			}
			if rev < 0 {
				hold(inRange(batch, key, end)) // not made the tenant's yet: some may go
			} else {
				add(tenantbackend.OwnBatch(liveBatch(batch, rev, after, key, end), h.Own))
			}
		case rev = <-start:
			if ctx.Err() != nil {
				// The catch-up failed (WatchRange cancels first): nothing
				// after its batch, or the client would get events with a
				// gap below them before the watch's end.
				return
			}
			waiting := queue
			queue, held = nil, 0
			for _, batch := range waiting {
				add(tenantbackend.OwnBatch(liveBatch(batch, rev, after, key, end), h.Own))
			}
		case out <- head:
			queue[0] = server.EventBatch{}
			queue = queue[1:]
		case <-ctx.Done():
			if rev >= 0 {
				return
			}
			// The catch-up's batch may be on its way into result, which
			// must not be closed before it.
			<-caughtUp
			return
		}
	}
}

// liveBatch is what a watch caught up to revision rev takes of a live
// batch: its events after rev and after in [key, end), at rev at least.
// (after is the revision the watch's catch-up reads after, the one before
// its start; it is past rev when the watch started from a revision the
// log had not reached.) The poller can be behind the catch-up (which
// reads past gaps it has passed, and up to the log's end); a batch of its
// below rev, passed on at its own revision, told the watch's progress
// answers a revision before the one the catch-up had sent.
func liveBatch(batch server.EventBatch, rev, after int64, key, end string) server.EventBatch {
	out := inRange(batch.After(max(rev, after)), key, end)
	out.CurrentRev = max(out.CurrentRev, rev)
	return out
}

// inRange keeps the events of keys in [key, end) (end "": the single key).
func inRange(batch server.EventBatch, key, end string) server.EventBatch {
	out := server.EventBatch{CurrentRev: batch.CurrentRev}
	for _, ev := range batch.Events {
		if ev == nil || ev.KV == nil {
			continue
		}
		k := ev.KV.Key
		if k == key || end != "" && k >= key && k < end {
			out.Events = append(out.Events, ev)
		}
	}
	return out
}

// Ready asks the database for an answer: the revision kine keeps in memory,
// which CurrentRevision answers with, tells nothing of whether the database
// still answers.
func (b *sqlBackend) Ready(ctx context.Context) error {
	if err := b.db.PingContext(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}
