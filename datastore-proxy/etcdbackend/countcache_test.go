package etcdbackend

import "testing"

func TestCountCache(t *testing.T) {
	var c countCache
	if _, ok := c.get("a", "b", 5); ok {
		t.Fatal("empty cache hit")
	}
	c.put("a", "b", 5, 42)
	if n, ok := c.get("a", "b", 5); !ok || n != 42 {
		t.Fatalf("get = %d, %v", n, ok)
	}
	if _, ok := c.get("a", "b", 6); ok {
		t.Fatal("a count served for another revision")
	}
	for i := range maxCounts + 1 {
		c.put("k", "e", int64(i+10), 1)
	}
	if len(c.m) > maxCounts {
		t.Fatalf("cache grew to %d entries", len(c.m))
	}
}
