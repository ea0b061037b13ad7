package backend

import (
	"context"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"

	"kplex.dev/datastore-proxy/tenantbackend"
)

// A watch on SQL reads the whole store's live feed from its subscription
// on: during its catch-up, and while its client takes nothing. Batches
// with none of its events take no place, so that kine's broadcaster (100
// batches, then the subscriber is dropped and the watch ends) never fills
// with other tenants' writes; the watch's own events come through in
// order, after the catch-up's revision.
func TestAWatchFollowsTheLiveFeedWhateverElseIsWritten(t *testing.T) {
	_, cancel, live, caughtUp, result := startFollow(t, "/t/a", "/t/b", 0)

	feed := func(from, to int64, mine map[int64]bool) {
		t.Helper()
		for rev := from; rev <= to; rev++ {
			key := "/t/other"
			if mine[rev] {
				key = "/t/a1"
			}
			send(t, live, batchAt(key, rev), nil)
		}
	}
	// The catch-up runs (nothing in result yet): 1,000 other writes, and
	// one of the watch's own at 10, which the catch-up also read.
	feed(1, 1000, map[int64]bool{10: true})
	result <- server.EventBatch{CurrentRev: 20} // the catch-up's batch
	caughtUp <- 20
	if got := <-result; got.CurrentRev != 20 {
		t.Fatalf("first batch at %d, want the catch-up's", got.CurrentRev)
	}
	// The client takes nothing for a while: 1,000 more other writes and
	// two of the watch's own.
	feed(1001, 2000, map[int64]bool{1500: true, 1900: true})
	events := eventsUpTo(t, result, 2000)
	if len(events) != 2 || events[0] != 1500 || events[1] != 1900 {
		t.Errorf("the watch's events: %v, want [1500 1900] (10 was the catch-up's)", events)
	}
	cancel()
	timeout := time.After(5 * time.Second)
	for ended := false; !ended; {
		select {
		case _, open := <-result:
			ended = !open // follow closes result as it returns
		case <-timeout:
			t.Fatal("the watch did not end with its context")
		}
	}
}

// A watch from a revision the log had not reached is caught up, empty, at
// the log's revision; the live events between that and its start are not
// its own, whether they came while the catch-up ran or after.
func TestAWatchFromAFutureRevisionFollowsFromItsStart(t *testing.T) {
	const start = 31 // the catch-up reads after 30; the log is at 20
	_, _, live, caughtUp, result := startFollow(t, "/t/", "/t0", start-1)
	feed := func(from, to int64, mine map[int64]bool) {
		for rev := from; rev <= to; rev++ {
			key := "/u/other"
			if mine[rev] {
				key = "/t/a"
			}
			live <- batchAt(key, rev)
		}
	}
	feed(21, 28, map[int64]bool{25: true}) // while the catch-up runs
	result <- server.EventBatch{CurrentRev: 20}
	caughtUp <- 20
	<-result
	feed(29, 40, map[int64]bool{30: true, 31: true, 35: true})
	events := eventsUpTo(t, result, 40)
	if len(events) != 2 || events[0] != 31 || events[1] != 35 {
		t.Errorf("a watch from %d: events %v, want [31 35]", start, events)
	}
}

// eventsUpTo reads the revisions of result's events until a batch at rev
// or later, within 5 s of each batch.
func eventsUpTo(t *testing.T, result <-chan server.EventBatch, rev int64) []int64 {
	t.Helper()
	var events []int64
	for last := int64(0); last < rev; {
		select {
		case b := <-result:
			for _, e := range b.Events {
				events = append(events, e.KV.ModRevision)
			}
			last = b.CurrentRev
		case <-time.After(5 * time.Second):
			t.Fatalf("events %v up to %d: want up to %d", events, last, rev)
		}
	}
	return events
}

// A watch whose client falls behind reads the live feed on, its own
// events piling up, until sqlWatchSlack of them wait; then it ends itself,
// with what it passed on a run from the start: its client watches again
// from there. It never leaves kine's buffer to fill: the broadcaster
// skips a batch for a full buffer and may still hand the subscriber a
// later one, and the skipped events were lost for good (it stopped
// reading at the slack). The same while its catch-up is still read.
func TestAWatchFallenBehindEndsItselfAndNeverStopsReading(t *testing.T) {
	const last = 10 + sqlWatchSlack + 200 // past the slack and kine's buffer
	mine := func(rev int64) server.EventBatch { return batchAt("/t/a", rev) }
	// feed sends from..to, or until the watch has ended itself (its
	// context, which ends its kine subscription).
	feed := func(t *testing.T, ctx context.Context, live chan<- server.EventBatch, from, to int64) {
		t.Helper()
		for rev := from; rev <= to; rev++ {
			if !send(t, live, mine(rev), ctx.Done()) {
				return
			}
		}
	}
	// rest reads result until it closes.
	rest := func(t *testing.T, result <-chan server.EventBatch) (events []int64) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case b, open := <-result:
				if !open {
					return events
				}
				for _, e := range b.Events {
					events = append(events, e.KV.ModRevision)
				}
			case <-timeout:
				t.Fatalf("the watch, %d batches behind, did not end (events %v)", sqlWatchSlack, events)
			}
		}
	}
	t.Run("after its catch-up", func(t *testing.T) {
		ctx, _, live, caughtUp, result := startFollow(t, "/t/", "/t0", 0)
		result <- server.EventBatch{CurrentRev: 10} // the catch-up's batch
		caughtUp <- 10
		<-result
		// The client takes five, then nothing.
		feed(t, ctx, live, 11, 15)
		got := eventsUpTo(t, result, 15)
		feed(t, ctx, live, 16, last)
		got = append(got, rest(t, result)...)
		if len(got) < 5 {
			t.Fatalf("events passed on: %v; want at least the five taken", got)
		}
		for i, rev := range got {
			if rev != int64(11+i) {
				t.Fatalf("events passed on: %v; want a run from 11", got)
			}
		}
	})
	t.Run("while its catch-up is read", func(t *testing.T) {
		ctx, _, live, caughtUp, result := startFollow(t, "/t/", "/t0", 0)
		// Held in events, not batches, meanwhile: full batches of kine's
		// poller, past sqlCatchUpSlack.
		for rev := int64(11); rev <= 10+sqlCatchUpSlack+1000; rev += 500 {
			b := server.EventBatch{CurrentRev: rev + 499}
			for r := rev; r < rev+500; r++ {
				b.Events = append(b.Events, mine(r).Events[0])
			}
			if !send(t, live, b, ctx.Done()) {
				break
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the watch did not end itself with its catch-up still being read")
		}
		// The catch-up, canceled, hands over as WatchRange does: nothing
		// but the batch, then its revision; result is closed after it.
		result <- server.EventBatch{}
		caughtUp <- 0
		if got := rest(t, result); len(got) != 0 {
			t.Fatalf("events passed on after a catch-up that failed: %v", got)
		}
	})
}

// startFollow runs follow for a watch of [key, end) from after + 1 until
// the test ends: the live feed it reads, with the room of kine's
// broadcaster's buffer, and the catch-up's hand-over and the results, with
// the room WatchRange gives them.
func startFollow(t *testing.T, key, end string, after int64) (ctx context.Context, cancel context.CancelFunc, live chan server.EventBatch, caughtUp chan int64, result chan server.EventBatch) {
	ctx, cancel = context.WithCancel(context.Background())
	t.Cleanup(cancel)
	live, caughtUp, result = make(chan server.EventBatch, 100), make(chan int64, 1), make(chan server.EventBatch, 1)
	go follow(ctx, cancel, live, caughtUp, result, key, end, after, tenantbackend.WatchHooks{})
	return ctx, cancel, live, caughtUp, result
}

// A watch whose range is written to while its catch-up is read, a batch a
// write, holds more of them than sqlWatchSlack and still starts: it
// passes them all on, in order, once the catch-up is there. Counted in
// batches, such a watch ended itself during every catch-up that took
// longer than 300 writes to its range, so that on a busy range it never
// started.
func TestAWatchOnABusyRangeStartsWhateverItsCatchUpTakes(t *testing.T) {
	ctx, _, live, caughtUp, result := startFollow(t, "/t/", "/t0", 0)
	const n = sqlWatchSlack + 200
	for rev := int64(11); rev <= 10+n; rev++ {
		if !send(t, live, batchAt("/t/a", rev), ctx.Done()) {
			t.Fatalf("the watch ended itself at revision %d, %d writes to its range into its catch-up", rev, rev-10)
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("the watch ended itself with %d writes to its range during its catch-up", n)
	}
	result <- server.EventBatch{CurrentRev: 10} // the catch-up's batch
	caughtUp <- 10
	<-result
	got := eventsUpTo(t, result, 10+n)
	if len(got) != n {
		t.Fatalf("%d events passed on, want %d", len(got), n)
	}
	for i, rev := range got {
		if rev != int64(11+i) {
			t.Fatalf("events passed on: %v; want a run from 11", got)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the watch ended")
	}
}

// send hands follow a live batch as kine's broadcaster does from a poller
// its subscriber keeps up with: once fewer than half of the buffer's
// batches wait (a watch whose buffer is one short of full ends itself).
// It reports false when done closes first, and fails the test when follow
// takes nothing for 5 s.
func send(t *testing.T, live chan<- server.EventBatch, b server.EventBatch, done <-chan struct{}) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(live) >= cap(live)/2 {
		select {
		case <-done:
			return false
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watch stopped reading the live feed at revision %d", b.CurrentRev)
		}
		time.Sleep(100 * time.Microsecond)
	}
	select {
	case live <- b:
		return true
	case <-done:
		return false
	}
}

// A watch whose feed fell a whole buffer behind takes on only the batches
// in the buffer then, and ends after them: kine's broadcaster skips a
// batch for a full buffer and may still hand the subscriber a later one
// before it closes the subscription, and that later batch was passed on,
// the skipped one's events lost for good (its client watched again from
// after it).
func TestAWatchEndsBeforeABatchAfterASkip(t *testing.T) {
	live := make(chan server.EventBatch, 100) // kine's buffer, full
	for rev := int64(11); rev <= 110; rev++ {
		live <- batchAt("/t/a", rev)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	caughtUp, result := make(chan int64, 1), make(chan server.EventBatch, 1)
	go follow(ctx, cancel, live, caughtUp, result, "/t/", "/t0", 0, tenantbackend.WatchHooks{})
	// 111 was skipped; 112 goes in once there is room, as the
	// broadcaster's next batch would.
	go func() {
		select {
		case live <- batchAt("/t/a", 112):
		case <-ctx.Done():
		}
	}()
	result <- server.EventBatch{CurrentRev: 10} // the catch-up's batch
	caughtUp <- 10
	<-result
	var got []int64
	timeout := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case b, ok := <-result:
			open = ok
			for _, e := range b.Events {
				got = append(got, e.KV.ModRevision)
			}
		case <-timeout:
			t.Fatalf("the watch did not end after the batches in its full buffer (events %v)", got)
		}
	}
	// A run from the start, of those in the buffer (what the watch had
	// queued when it ended is dropped: its client watches again from the
	// last event it got).
	for i, rev := range got {
		if rev != int64(11+i) || rev > 110 {
			t.Fatalf("events passed on: %v; want a run from 11 of those in the buffer (to 110), never 112", got)
		}
	}
}

// batchAt is a live batch at rev holding one event, of key at rev.
func batchAt(key string, rev int64) server.EventBatch {
	return server.EventBatch{CurrentRev: rev, Events: []*server.Event{{KV: &server.KeyValue{Key: key, ModRevision: rev}}}}
}
