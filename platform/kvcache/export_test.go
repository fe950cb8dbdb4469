package kvcache

import "context"

// SetPageSize sets how many keys one read of a load fetches, until restore is called.
func SetPageSize(n int64) (restore func()) {
	old := pageSize
	pageSize = n
	return func() { pageSize = old }
}

// Load reloads the cache now, as after a compaction of its watch; it returns the revision the
// cache is applied up to.
func (c *Cache[T]) Load(ctx context.Context) (int64, error) { return c.load(ctx) }
