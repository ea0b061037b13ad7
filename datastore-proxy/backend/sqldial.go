package backend

import (
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/k3s-io/kine/pkg/dialer"
)

// A PostgreSQL or MySQL server lost without closing its connections (its
// host gone, a partition) held the queries in flight on them until TCP
// gave up, a quarter of an hour later; among them kine's poll of the
// log, which every watch of every tenant waits on. kine's PostgreSQL and
// MySQL drivers dial through one dialer of kine's (dialer.CachingDialer,
// which both set as their driver's DialFunc), so the proxy gives the TCP
// connections it dials the same TCP_USER_TIMEOUT as its etcd connections:
// a query whose bytes stay unacknowledged that long fails, its connection
// is closed, and the next one is dialed anew. Idle connections carry Go's
// TCP keepalive probes (15 s), which the timeout also bounds. What this
// does not find is a server process that hangs while its host still
// acknowledges: only a query's own context ends that wait.

var (
	sqlUserTimeoutMs atomic.Int64
	sqlDialOnce      sync.Once
)

// setSQLUserTimeout makes kine's SQL connections dialed from now on carry
// TCP_USER_TIMEOUT timeout. The dialer is kine's, shared by the whole
// process: the last timeout set is the one new connections get.
func setSQLUserTimeout(timeout time.Duration) {
	sqlUserTimeoutMs.Store(timeout.Milliseconds())
	sqlDialOnce.Do(func() {
		dialer.CachingDialer.Dialer.Control = func(network, _ string, rc syscall.RawConn) error {
			if !strings.HasPrefix(network, "tcp") { // a Unix socket
				return nil
			}
			return setUserTimeout(rc, sqlUserTimeoutMs.Load())
		}
	})
}
