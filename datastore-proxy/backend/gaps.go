package backend

import (
	"context"
	"database/sql"
	"fmt"
)

// Why a watch's catch-up stops at the first gap in the log's ids:
//
// PostgreSQL and MySQL hand out a row's id when its insert starts and show
// the row when its transaction commits, so for a moment a higher id can be
// visible while a lower one is not. kine's poller, which feeds every live
// watch, waits for such a gap to fill (or fills it itself after a second)
// and so streams rows strictly in id order. A catch-up read that ends at the
// table's highest id and then drops live events at or below it loses the
// row that commits into the gap: the read did not see it and the live
// stream is told it was already sent. That lost configmaps after a proxy
// restart under load (docs/benchmarks.md, the PostgreSQL watch race).
//
// So the catch-up ends where the ids stop being contiguous. Every row above
// that point reaches the watch through the live stream: the poller cannot
// have passed the gap before the watch subscribed, since the gap was still
// open when contiguousEnd looked, after the subscription.
//
// That holds for the gaps the poller has yet to pass, and only for those.
// A gap it has passed never reaches a live watch: the poller never goes
// back, whether the gap was below the id it started from (kine starts it
// at the highest id then: after a crash, a transaction that held an id
// below it and died leaves a gap that never fills) or one it skipped after
// failing to fill it for a second. A catch-up that stopped at such a gap
// lost every row above it, up to where the poller had been, until
// compaction passed it. So the catch-up reads on at least to where the
// poller is known to have been (sqlBackend.polled: where it started, then
// the revision of each batch it broadcast), and stops at the first gap
// above that: every id up to it is settled, its rows visible to the read.
// The proxy starts the poller as the backend opens (sqlBackend.served),
// before any tenant writes, and not on a tenant's first watch, which would
// start it above the very gap that watch's catch-up stops at.

// idsPage is how many ids contiguousEnd reads per query.
const idsPage = 1000

// contiguousEnd returns the highest id e >= after such that every id in
// (after, e] is a row of the log. Ids at or below the compact revision can
// be missing because compaction deleted them; callers start at the compact
// revision at least, as far as they know it (catchUp), and check the
// start revision against it (after).
func contiguousEnd(ctx context.Context, db *sql.DB, query string, after int64) (int64, error) {
	end := after
	for {
		n, gap, err := contiguousPage(ctx, db, query, &end)
		if err != nil {
			return 0, err
		}
		if gap || n < idsPage {
			return end, nil
		}
	}
}

// contiguousPage reads up to idsPage ids above *end, advancing *end while
// they follow on; gap tells whether a missing id stopped it.
func contiguousPage(ctx context.Context, db *sql.DB, query string, end *int64) (n int, gap bool, err error) {
	rows, err := db.QueryContext(ctx, query, *end, idsPage)
	if err != nil {
		return 0, false, fmt.Errorf("read the log's ids after %d: %w", *end, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return n, false, fmt.Errorf("read the log's ids after %d: %w", *end, err)
		}
		if id != *end+1 {
			return n, true, nil
		}
		*end = id
		n++
	}
	if err := rows.Err(); err != nil {
		return n, false, fmt.Errorf("read the log's ids after %d: %w", *end, err)
	}
	return n, false, nil
}

// idsAfterQuery is the ids query in the placeholder style of kind.
func idsAfterQuery(kind string) string {
	if kind == "postgres" {
		return "SELECT id FROM kine WHERE id > $1 ORDER BY id LIMIT $2"
	}
	return "SELECT id FROM kine WHERE id > ? ORDER BY id LIMIT ?"
}
