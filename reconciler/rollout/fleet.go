package rollout

import (
	"gitxds.dev/gitxds/reconciler/snapshot"
)

// Fleet is what a rollout needs of the xDS server.
type Fleet interface {
	// Nodes connected now.
	Nodes() []Node
	// SetDefault is what nodes without an assignment are served.
	SetDefault(set *snapshot.Set)
	// Assign serves set to these nodes until they are unassigned.
	Assign(ids []string, set *snapshot.Set)
	// Unassign puts nodes back on the default.
	Unassign(ids []string)
	// Subscribe to node events; cancel when done.
	Subscribe() (<-chan Event, func())
}

// Node is a connected node as the rollout sees it.
type Node struct {
	ID     string
	Class  snapshot.Class
	Group  snapshot.Group // proxy group: the node runs set.In(Group)
	Labels map[string]string
	// Requested holds the type URLs the node subscribed to.
	Requested map[string]bool
	// Acked is the version the node last ACKed, per type URL.
	Acked map[string]string
	// Rejected holds the hashes of Sets the node NACKed, with the reason.
	Rejected map[string]string
}

// HasAcked reports whether the node ACKed set's version, of its class and
// group, of every type it subscribed to.
func (n Node) HasAcked(set *snapshot.Set) bool {
	if len(n.Requested) == 0 {
		return false
	}
	set = set.In(n.Group)
	for t := range n.Requested {
		if n.Acked[t] != set.Version(n.Class, t) {
			return false
		}
	}
	return true
}

// EventKind of a fleet event.
type EventKind int

const (
	Connect EventKind = iota
	Disconnect
	ACK
	NACK
	// Changed: the Board's FleetState or a report changed (fleet-wide
	// reach).
	Changed
)

func (k EventKind) String() string {
	return [...]string{"connect", "disconnect", "ack", "nack", "changed"}[k]
}

// Event from the xDS server.
type Event struct {
	Kind    EventKind
	NodeID  string
	TypeURL string
	Version string
	Error   string
}
