package etcdbackend

import "sync"

// countCache remembers how many keys a range held at a revision. kine's
// bridge answers a limited list with List(limit+1) and then Count at the
// same revision; etcd already returned that count with the list, and a
// count at a fixed revision never changes (MVCC), so the second read is
// served from here instead of from etcd. With the count it keeps the
// header revision of the list's answer, the store's revision then, which
// the count answers with as etcd would (not the revision counted at).
type countCache struct {
	mu sync.Mutex
	m  map[countKey]countOf
}

type countOf struct{ count, header int64 }

type countKey struct {
	key, end string
	revision int64
}

// maxCounts bounds the cache; it is simply emptied when full (entries are
// wanted only for the instant between a List and its Count).
const maxCounts = 4096

func (c *countCache) put(key, end string, revision, count, header int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCounts {
		c.m = make(map[countKey]countOf, 64)
	}
	c.m[countKey{key, end, revision}] = countOf{count, header}
}

// get returns the count of [key, end) at revision and the header revision
// of the answer it came with.
func (c *countCache) get(key, end string, revision int64) (count, header int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[countKey{key, end, revision}]
	return n.count, n.header, ok
}
