package vdisk

import (
	"container/list"
	"sync"
)

// CacheKey names a cached block: which source file, and the byte offset of
// the block's stored form in it.
type CacheKey struct {
	Src int
	Off int64
}

// Cache is a least-recently-used cache of byte blocks bounded by their
// total size. It is safe for concurrent use. Cached slices are shared:
// callers must not modify them.
type Cache struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order list.List // of *cacheEntry, most recent first
	byKey map[CacheKey]*list.Element
}

type cacheEntry struct {
	key CacheKey
	b   []byte
}

// NewCache returns a cache holding at most maxBytes of blocks; 0 or less
// gives a cache that keeps nothing.
func NewCache(maxBytes int64) *Cache {
	return &Cache{max: maxBytes, byKey: map[CacheKey]*list.Element{}}
}

// Get returns the block stored under k, if any.
func (c *Cache) Get(k CacheKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).b, true
}

// Put stores b under k, evicting the least recently used blocks to stay
// within the bound. A block larger than the whole cache is not kept.
func (c *Cache) Put(k CacheKey, b []byte) {
	size := int64(len(b))
	if size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		old := e.Value.(*cacheEntry)
		c.used += size - int64(len(old.b))
		old.b = b
		c.order.MoveToFront(e)
	} else {
		c.byKey[k] = c.order.PushFront(&cacheEntry{key: k, b: b})
		c.used += size
	}
	for c.used > c.max {
		last := c.order.Back()
		ent := last.Value.(*cacheEntry)
		c.order.Remove(last)
		delete(c.byKey, ent.key)
		c.used -= int64(len(ent.b))
	}
}

// Len reports the number of cached blocks and their total bytes.
func (c *Cache) Len() (blocks int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey), c.used
}
