package etcdbackend

import "sync"

// countCache remembers how many keys a range held at a revision. kine's
// bridge answers a limited list with List(limit+1) and then Count at the
// same revision; etcd already returned that count with the list, and a
// count at a fixed revision never changes (MVCC), so the second read is
// served from here instead of from etcd.
type countCache struct {
	mu sync.Mutex
	m  map[countKey]int64
}

type countKey struct {
	key, end string
	revision int64
}

// maxCounts bounds the cache; it is simply emptied when full (entries are
// wanted only for the instant between a List and its Count).
const maxCounts = 4096

func (c *countCache) put(key, end string, revision, count int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCounts {
		c.m = make(map[countKey]int64, 64)
	}
	c.m[countKey{key, end, revision}] = count
}

func (c *countCache) get(key, end string, revision int64) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[countKey{key, end, revision}]
	return n, ok
}
