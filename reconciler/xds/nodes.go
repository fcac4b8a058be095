package xds

import (
	"fmt"
	"maps"
	"sort"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// NodeInfo is what the registry knows of a connected node.
type NodeInfo struct {
	ID    string
	Class snapshot.Class
	// Group is the node's proxy group (label snapshot.GroupLabel, pinned
	// with the other labels when the node identity pins them): it is
	// served that group's Set (snapshot.Set.In).
	Group  snapshot.Group
	Labels map[string]string
	// UserAgent is Node.user_agent_name and its version.
	UserAgent string
	// Streams open now (an Envoy has one ADS stream; a gRPC client one per
	// target it dials).
	Streams   int
	FirstSeen time.Time
	// Types by type URL: every type the node requested, ACKed or NACKed.
	Types map[string]TypeStatus
	// Served is the Set the node is served now, or being moved to; nil
	// before any.
	Served *snapshot.Set
	// StepsLeft: how many steps of the move to Served are still to be
	// sent (each waits for the node's ACK of the previous one).
	StepsLeft int
	// LastGood is the last Set the node fully ACKed; nil if none.
	LastGood *snapshot.Set
	// Failed are the Sets the node rejected, by Set hash.
	Failed map[string]Failure
	// Draining are the scopes (SRDS) the node is still served after its
	// Set dropped them, by name, with when their drain ends (drain.go).
	Draining map[string]time.Time
}

// TypeStatus is one type URL of a node.
type TypeStatus struct {
	// Requested: an open stream of the node subscribed to this type.
	Requested bool
	// ACKed is the version the node last ACKed ("" if none), and when: the
	// Set's version when the node ACKed it extended with scopes kept for
	// draining (drain.go).
	ACKed   string
	ACKedAt time.Time
	// LastNACK is the node's last rejection of this type, nil if none.
	LastNACK *Rejection
}

// Rejection is a NACK: the rejected version, the client's message, when.
type Rejection struct {
	Version string
	Error   string
	Time    time.Time
}

// Failure records why a node rejected a Set.
type Failure struct {
	TypeURL string
	Version string
	Error   string
	Time    time.Time
}

// HasACKed reports whether the node ACKed set's version, for its class and
// group, of
// every served type it requested. A node that has requested nothing yet has
// ACKed nothing. A type the node never subscribed to is one it does not
// consume (a gRPC client whose target has no route never asks for clusters).
func (n NodeInfo) HasACKed(set *snapshot.Set) bool {
	return hasACKed(n.Class, n.Group, n.Types, set)
}

func hasACKed(c snapshot.Class, g snapshot.Group, types map[string]TypeStatus, set *snapshot.Set) bool {
	if set == nil {
		return false
	}
	set = set.In(g)
	requested := false
	for _, t := range snapshot.TypeURLs {
		ts := types[t]
		if !ts.Requested {
			continue
		}
		requested = true
		if ts.ACKed != set.Version(c, t) {
			return false
		}
	}
	return requested
}

// Nodes returns the connected nodes, sorted by id.
func (s *Server) Nodes() []NodeInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]NodeInfo, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, n.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Node returns one connected node.
func (s *Server) Node(id string) (NodeInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[id]
	if !ok {
		return NodeInfo{}, false
	}
	return n.info(), true
}

// streamKey names a stream: the sotw and delta servers count their stream
// ids separately.
type streamKey struct {
	delta bool
	id    int64
}

type streamState struct {
	key       streamKey
	typeURL   string        // the service's type; "" for ADS
	peer      *peerIdentity // the verified client certificate; nil if none or not checked
	node      *nodeState
	requested map[string]bool
	sent      map[string][]sentResponse // type URL -> last responses, newest last
}

type sentResponse struct{ nonce, version string }

// sentKept is how many responses per type a stream remembers, to tell which
// version a (possibly late) ACK or NACK refers to.
const sentKept = 8

func (st *streamState) addSent(typeURL, nonce, version string) {
	l := append(st.sent[typeURL], sentResponse{nonce, version})
	if len(l) > sentKept {
		l = l[len(l)-sentKept:]
	}
	st.sent[typeURL] = l
}

func (st *streamState) sentVersion(typeURL, nonce string) (string, bool) {
	for _, r := range st.sent[typeURL] {
		if r.nonce == nonce {
			return r.version, true
		}
	}
	return "", false
}

type nodeState struct {
	id        string
	identity  string // the certificate SAN that proved id (NodeIdentity); "" if not checked
	class     snapshot.Class
	group     snapshot.Group // of labels, once they are pinned (callbacks.go)
	labels    map[string]string
	userAgent string
	firstSeen time.Time
	streams   map[streamKey]*streamState
	types     map[string]*typeState

	served     *snapshot.Set   // target of the last transition
	target     *cache.Snapshot // its snapshot, with the scopes kept for draining (drain.go)
	draining   map[string]*draining
	drainTimer *time.Timer
	cur        *cache.Snapshot   // what the cache holds for the node now
	queue      []*cache.Snapshot // steps still to go (step.go)
	advancing  bool
	timer      *time.Timer                // forces the next step after StepTimeout
	pending    map[string]map[string]bool // type URL -> versions sent since served was set
	lastGood   *snapshot.Set
	failed     map[string]Failure
}

type typeState struct {
	acked    string
	ackedAt  time.Time
	lastNACK *Rejection
}

func newNode(node *corev3.Node, now time.Time) *nodeState {
	ua := node.GetUserAgentName()
	if v := node.GetUserAgentVersion(); v != "" {
		ua += " " + v
	} else if v := node.GetUserAgentBuildVersion().GetVersion(); v != nil {
		// What ClassOf decides on (Envoy 1.38 or later: EnvoyScoped).
		ua += fmt.Sprintf(" %d.%d.%d", v.GetMajorNumber(), v.GetMinorNumber(), v.GetPatch())
	}
	return &nodeState{
		id:        node.GetId(),
		class:     snapshot.ClassOf(node),
		labels:    snapshot.Labels(node),
		userAgent: ua,
		firstSeen: now,
		streams:   map[streamKey]*streamState{},
		types:     map[string]*typeState{},
		failed:    map[string]Failure{},
	}
}

func (n *nodeState) typ(typeURL string) *typeState {
	ts := n.types[typeURL]
	if ts == nil {
		ts = &typeState{}
		n.types[typeURL] = ts
	}
	return ts
}

func (n *nodeState) requested(typeURL string) bool {
	for _, st := range n.streams {
		if st.requested[typeURL] {
			return true
		}
	}
	return false
}

func (n *nodeState) typeStatus() map[string]TypeStatus {
	out := map[string]TypeStatus{}
	for t, ts := range n.types {
		out[t] = TypeStatus{ACKed: setVersion(ts.acked), ACKedAt: ts.ackedAt, LastNACK: ts.lastNACK}
	}
	for _, st := range n.streams {
		for t := range st.requested {
			ts := out[t]
			ts.Requested = true
			out[t] = ts
		}
	}
	return out
}

// hasACKed is hasACKed(n.class, n.group, n.typeStatus(), set) without building the
// status map: it runs on every ACK of every node.
func (n *nodeState) hasACKed(set *snapshot.Set) bool {
	if set == nil {
		return false
	}
	set = set.In(n.group)
	requested := false
	for _, t := range snapshot.TypeURLs {
		if !n.requested(t) {
			continue
		}
		requested = true
		if ts := n.types[t]; ts == nil || setVersion(ts.acked) != set.Version(n.class, t) {
			return false
		}
	}
	return requested
}

func (n *nodeState) info() NodeInfo {
	return NodeInfo{
		ID:        n.id,
		Class:     n.class,
		Group:     n.group,
		Labels:    maps.Clone(n.labels),
		UserAgent: n.userAgent,
		Streams:   len(n.streams),
		FirstSeen: n.firstSeen,
		Types:     n.typeStatus(),
		Served:    n.served,
		StepsLeft: len(n.queue),
		LastGood:  n.lastGood,
		Failed:    maps.Clone(n.failed),
		Draining:  n.drainingInfo(),
	}
}

func (n *nodeState) drainingInfo() map[string]time.Time {
	if len(n.draining) == 0 {
		return nil
	}
	out := make(map[string]time.Time, len(n.draining))
	for name, d := range n.draining {
		out[name] = d.until
	}
	return out
}
