package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
)

// Member describes one node of a Fleet.
type Member struct {
	NodeID   string
	Metadata map[string]string
}

// Members returns n members with ids "<prefix>-0" ... "<prefix>-(n-1)", all
// with the same metadata.
func Members(prefix string, n int, metadata map[string]string) []Member {
	out := make([]Member, n)
	for i := range out {
		out[i] = Member{NodeID: fmt.Sprintf("%s-%d", prefix, i), Metadata: maps.Clone(metadata)}
	}
	return out
}

// Fleet is a set of Clients against one xDS server.
type Fleet struct {
	clients []*Client
	byID    map[string]*Client
}

// NewFleet makes one Client per member, with base's ServerAddr, Insecure and
// CallTimeout (base's NodeID and Metadata are ignored). Node ids must be
// unique. Like New, it does not connect.
func NewFleet(base Options, members []Member) (*Fleet, error) {
	f := &Fleet{byID: map[string]*Client{}}
	for _, m := range members {
		if _, dup := f.byID[m.NodeID]; dup {
			f.Close()
			return nil, fmt.Errorf("xdsclient: fleet: duplicate node id %q", m.NodeID)
		}
		opts := base
		opts.NodeID, opts.Metadata = m.NodeID, m.Metadata
		c, err := New(opts)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.clients = append(f.clients, c)
		f.byID[m.NodeID] = c
	}
	return f, nil
}

// Clients are the fleet's clients in member order.
func (f *Fleet) Clients() []*Client { return append([]*Client(nil), f.clients...) }

// Client is the client with node id id, or nil.
func (f *Fleet) Client(id string) *Client { return f.byID[id] }

// Len is the number of clients.
func (f *Fleet) Len() int { return len(f.clients) }

// Connect starts every client's xDS stream for target (see Client.Connect).
func (f *Fleet) Connect(target string) error {
	var errs []error
	for _, c := range f.clients {
		errs = append(errs, c.Connect(target))
	}
	return errors.Join(errs...)
}

// parallel runs fn for every client, at most 64 at a time, and returns the
// errors joined.
func (f *Fleet) parallel(fn func(*Client) error) error {
	sem := make(chan struct{}, 64)
	errs := make([]error, len(f.clients))
	var wg sync.WaitGroup
	for i, c := range f.clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(c)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// CallAll makes one call from every client and returns who answered each node
// (by node id). Failed calls are missing from the map and in the error.
func (f *Fleet) CallAll(ctx context.Context, target string, md map[string]string) (map[string]string, error) {
	var mu sync.Mutex
	out := map[string]string{}
	err := f.parallel(func(c *Client) error {
		id, err := c.Call(ctx, target, md)
		if err != nil {
			return fmt.Errorf("%s: %w", c.NodeID(), err)
		}
		mu.Lock()
		out[c.NodeID()] = id
		mu.Unlock()
		return nil
	})
	return out, err
}

// WaitAll runs WaitFor on every client at once; it returns when all are
// answered by serverID or ctx ends, with the clients that were not.
func (f *Fleet) WaitAll(ctx context.Context, target, serverID string, md map[string]string) error {
	return f.parallel(func(c *Client) error { return c.WaitFor(ctx, target, serverID, md) })
}

// Close closes every client.
func (f *Fleet) Close() error {
	var errs []error
	for _, c := range f.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
