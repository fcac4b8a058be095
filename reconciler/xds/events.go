package xds

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// EventKind says what happened to a node.
type EventKind int

const (
	// Connect: the first stream of a node sent its first request.
	Connect EventKind = iota + 1
	// Disconnect: the last stream of a node closed.
	Disconnect
	// ACK: the node accepted Version of TypeURL (also recorded when a
	// reconnecting node says it has a version, and when a delta node is in
	// sync with a snapshot that changes nothing it subscribed to).
	ACK
	// NACK: the node rejected Version of TypeURL with Error.
	NACK
)

func (k EventKind) String() string {
	switch k {
	case Connect:
		return "connect"
	case Disconnect:
		return "disconnect"
	case ACK:
		return "ack"
	case NACK:
		return "nack"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is something a node did.
type Event struct {
	NodeID  string
	TypeURL string
	Version string
	Kind    EventKind
	Error   string
	Time    time.Time
}

type subscriber struct {
	ch      chan Event
	dropped uint64
}

// Subscribe returns a channel of events and a function that ends the
// subscription (and closes the channel); call it when done.
//
// The xDS path never waits for a subscriber: each channel holds
// Options.EventBuffer events, and an event that finds it full is dropped
// and counted (DroppedEvents). A subscriber that must not miss a state
// change should read Nodes, Node or WaitACK, which read the registry, not
// the events.
func (s *Server) Subscribe() (<-chan Event, func()) {
	sub := &subscriber{ch: make(chan Event, s.opts.EventBuffer)}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs, sub)
			close(sub.ch)
			s.mu.Unlock()
		})
	}
}

// DroppedEvents is how many events were dropped, over all subscribers,
// because a subscriber's channel was full.
func (s *Server) DroppedEvents() uint64 { return s.dropped.Load() }

func (s *Server) emitLocked(ev Event) {
	for sub := range s.subs {
		select {
		case sub.ch <- ev:
		default:
			sub.dropped++
			s.dropped.Add(1)
		}
	}
}

// notifyLocked wakes every WaitACK.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// WaitACK returns nil once every node in nodeIDs has ACKed set for its
// class (NodeInfo.HasACKed), an error naming the node, type and message as
// soon as one of them has rejected set, or ctx's error, naming the nodes
// still waited for. A node that is not connected is not waited for.
func (s *Server) WaitACK(ctx context.Context, nodeIDs []string, set *snapshot.Set) error {
	if set == nil {
		return fmt.Errorf("xds: WaitACK: nil set")
	}
	hash := set.Hash()
	for {
		s.mu.Lock()
		changed := s.changed
		var waiting []string
		for _, id := range nodeIDs {
			n := s.nodes[id]
			if n == nil {
				continue
			}
			if f, bad := n.failed[hash]; bad {
				s.mu.Unlock()
				return fmt.Errorf("xds: node %s rejected %s version %s of revision %s: %s",
					id, f.TypeURL, f.Version, set.Revision, f.Error)
			}
			if !n.hasACKed(set) {
				waiting = append(waiting, id)
			}
		}
		s.mu.Unlock()
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			sort.Strings(waiting)
			if len(waiting) > 10 {
				waiting = append(waiting[:10], fmt.Sprintf("and %d more", len(waiting)-10))
			}
			return fmt.Errorf("xds: no ACK of revision %s from %s: %w", set.Revision, strings.Join(waiting, ", "), ctx.Err())
		}
	}
}
