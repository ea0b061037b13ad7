package etcdbackend

import (
	"sync"
	"time"
)

// countCache remembers how many keys a range held at a revision. kine's
// bridge answers a limited list with List(limit+1) and then Count at the
// same revision; etcd already returned that count with the list, and a
// count at a fixed revision never changes (MVCC), so the second read is
// served from here instead of from etcd. With the count it keeps the
// header revision of the list's answer, the store's revision then, which
// the count answers with as etcd would (not the revision counted at).
//
// An entry serves one count, and only for maxCountAge after its list:
// etcd refuses a count at a compacted revision (ErrCompacted), so a count
// must not outlive its revision. The proxy compacts only to a revision it
// saw an interval or more ago (compact.go), every replica alike, so a
// revision listed within the last maxCountAge, capped at that interval,
// is not compacted yet; and Compact drops the entries it passes.
type countCache struct {
	maxAge time.Duration    // 0: maxCountAge
	now    func() time.Time // nil: time.Now

	mu sync.Mutex
	m  map[countKey]countOf
}

type countOf struct {
	count, header int64
	at            time.Time
}

type countKey struct {
	key, end string
	revision int64
}

const (
	// maxCounts bounds the cache; it is simply emptied when full
	// (entries are wanted only for the instant between a List and its
	// Count).
	maxCounts = 4096
	// maxCountAge is how long after its list an entry may serve a count.
	maxCountAge = time.Second
)

func (c *countCache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func (c *countCache) put(key, end string, revision, count, header int64) {
	at := c.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCounts {
		c.m = make(map[countKey]countOf, 64)
	}
	c.m[countKey{key, end, revision}] = countOf{count, header, at}
}

// take returns the count of [key, end) at revision and the header revision
// of the answer it came with, if a list read it less than the cache's age
// ago, and forgets it.
func (c *countCache) take(key, end string, revision int64) (count, header int64, ok bool) {
	now := c.clock()
	maxAge := c.maxAge
	if maxAge <= 0 {
		maxAge = maxCountAge
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := countKey{key, end, revision}
	n, ok := c.m[k]
	if !ok {
		return 0, 0, false
	}
	delete(c.m, k)
	if now.Sub(n.at) >= maxAge {
		return 0, 0, false
	}
	return n.count, n.header, true
}

// compacted forgets the counts at revisions below rev, which etcd now
// refuses to count at.
func (c *countCache) compacted(rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if k.revision < rev {
			delete(c.m, k)
		}
	}
}
