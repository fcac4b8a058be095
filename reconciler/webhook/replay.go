package webhook

import (
	"container/list"
	"sync"
	"time"
)

// replayCache remembers delivery keys for a window, at most max of them
// (the oldest go first).
type replayCache struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu    sync.Mutex
	seen  map[string]*list.Element
	order *list.List // of entry, oldest first
}

type entry struct {
	key string
	at  time.Time
}

func newReplayCache(window time.Duration, max int, now func() time.Time) *replayCache {
	return &replayCache{window: window, max: max, now: now, seen: map[string]*list.Element{}, order: list.New()}
}

// add records keys and reports true, unless one of them is already
// remembered: then it records nothing and reports false.
func (c *replayCache) add(keys ...string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for e := c.order.Front(); e != nil && now.Sub(e.Value.(entry).at) > c.window; e = c.order.Front() {
		c.order.Remove(e)
		delete(c.seen, e.Value.(entry).key)
	}
	for _, k := range keys {
		if _, ok := c.seen[k]; ok {
			return false
		}
	}
	for _, k := range keys {
		c.seen[k] = c.order.PushBack(entry{key: k, at: now})
	}
	for c.order.Len() > c.max {
		e := c.order.Front()
		c.order.Remove(e)
		delete(c.seen, e.Value.(entry).key)
	}
	return true
}
