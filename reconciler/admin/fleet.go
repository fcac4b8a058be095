package admin

import (
	"time"

	"gitxds.dev/gitxds/reconciler/metrics"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xds"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// XDSFleet adapts the xDS server to what the rollout and the admin API need,
// and keeps the node and ACK/NACK metrics.
type XDSFleet struct {
	srv *xds.Server
	m   *metrics.Metrics
}

var _ rollout.Fleet = (*XDSFleet)(nil)

// NewXDSFleet wraps srv; it records node metrics for the life of the process.
func NewXDSFleet(srv *xds.Server, m *metrics.Metrics) *XDSFleet {
	f := &XDSFleet{srv: srv, m: m}
	// Present from the start, so that an alert on "no node connected" sees
	// a 0 rather than no series.
	for _, c := range snapshot.Classes {
		m.NodesConnected.WithLabelValues(string(c)).Set(0)
	}
	events, _ := srv.Subscribe()
	go f.record(events)
	return f
}

func (f *XDSFleet) record(events <-chan xds.Event) {
	// Node counts are recounted once a burst of connects or disconnects is
	// over (or every second during one), not once per event: a recount
	// reads every node under the server's lock, and 1,000 nodes
	// reconnecting after a restart would otherwise cost 1,000 of them.
	dirty := false
	var counted time.Time
	for ev := range events {
		switch ev.Kind {
		case xds.ACK:
			f.m.XDSResponses.WithLabelValues(xdsres.ShortType(ev.TypeURL), "ack").Inc()
		case xds.NACK:
			f.m.XDSResponses.WithLabelValues(xdsres.ShortType(ev.TypeURL), "nack").Inc()
		case xds.Connect, xds.Disconnect:
			dirty = true
		}
		if dirty && (len(events) == 0 || time.Since(counted) > time.Second) {
			counts := map[snapshot.Class]int{}
			for _, n := range f.srv.Nodes() {
				counts[n.Class]++
			}
			for _, c := range snapshot.Classes {
				f.m.NodesConnected.WithLabelValues(string(c)).Set(float64(counts[c]))
			}
			dirty, counted = false, time.Now()
		}
	}
}

// Nodes implements rollout.Fleet.
func (f *XDSFleet) Nodes() []rollout.Node {
	infos := f.srv.Nodes()
	out := make([]rollout.Node, 0, len(infos))
	for _, n := range infos {
		rn := rollout.Node{ID: n.ID, Class: n.Class, Group: n.Group, Labels: n.Labels,
			Requested: map[string]bool{}, Acked: map[string]string{}, Rejected: map[string]string{}}
		for t, ts := range n.Types {
			if ts.Requested {
				rn.Requested[t] = true
			}
			if ts.ACKed != "" {
				rn.Acked[t] = ts.ACKed
			}
		}
		for hash, fl := range n.Failed {
			rn.Rejected[hash] = xdsres.ShortType(fl.TypeURL) + ": " + fl.Error
		}
		out = append(out, rn)
	}
	return out
}

// SetDefault implements rollout.Fleet.
func (f *XDSFleet) SetDefault(set *snapshot.Set) { f.srv.SetDefault(set) }

// Assign implements rollout.Fleet.
func (f *XDSFleet) Assign(ids []string, set *snapshot.Set) { f.srv.Assign(ids, set) }

// Unassign implements rollout.Fleet.
func (f *XDSFleet) Unassign(ids []string) { f.srv.Unassign(ids) }

// Subscribe implements rollout.Fleet.
func (f *XDSFleet) Subscribe() (<-chan rollout.Event, func()) {
	in, cancel := f.srv.Subscribe()
	out := make(chan rollout.Event, 256)
	go func() {
		defer close(out)
		for ev := range in {
			var k rollout.EventKind
			switch ev.Kind {
			case xds.Connect:
				k = rollout.Connect
			case xds.Disconnect:
				k = rollout.Disconnect
			case xds.ACK:
				k = rollout.ACK
			case xds.NACK:
				k = rollout.NACK
			default:
				continue
			}
			select {
			case out <- rollout.Event{Kind: k, NodeID: ev.NodeID, TypeURL: ev.TypeURL, Version: ev.Version, Error: ev.Error}:
			default: // the rollout also polls Nodes(); never block the xDS path
			}
		}
	}()
	return out, cancel
}

// Served implements NodeSource.
func (f *XDSFleet) Served(nodeID string) (*snapshot.Set, snapshot.Class, snapshot.Group, bool) {
	n, ok := f.srv.Node(nodeID)
	if !ok {
		return nil, "", "", false
	}
	return n.Served, n.Class, n.Group, true
}

// NodeView is one node in GET /nodes.
type NodeView struct {
	ID        string                 `json:"id"`
	Class     snapshot.Class         `json:"class"`
	Group     snapshot.Group         `json:"proxyGroup,omitempty"`
	Labels    map[string]string      `json:"labels,omitempty"`
	UserAgent string                 `json:"userAgent,omitempty"`
	Streams   int                    `json:"streams"`
	FirstSeen time.Time              `json:"firstSeen"`
	Served    string                 `json:"served,omitempty"`   // revision@hash
	LastGood  string                 `json:"lastGood,omitempty"` // revision@hash
	Types     map[string]TypeView    `json:"types,omitempty"`
	Failed    map[string]xds.Failure `json:"failed,omitempty"`
	// Draining: Envoy scopes still served after the Set dropped them,
	// until when (xds.Options.ScopeDrain).
	Draining map[string]time.Time `json:"draining,omitempty"`
}

// TypeView is one type of a node in GET /nodes.
type TypeView struct {
	Requested bool   `json:"requested"`
	ACKed     string `json:"acked,omitempty"`
	LastNACK  string `json:"lastNack,omitempty"`
}

// NodesJSON implements NodeSource.
func (f *XDSFleet) NodesJSON() any {
	infos := f.srv.Nodes()
	out := make([]NodeView, 0, len(infos))
	for _, n := range infos {
		v := NodeView{ID: n.ID, Class: n.Class, Group: n.Group, Labels: n.Labels, UserAgent: n.UserAgent, Streams: n.Streams,
			FirstSeen: n.FirstSeen, Served: setName(n.Served), LastGood: setName(n.LastGood), Failed: n.Failed,
			Draining: n.Draining, Types: map[string]TypeView{}}
		for t, ts := range n.Types {
			tv := TypeView{Requested: ts.Requested, ACKed: ts.ACKed}
			if ts.LastNACK != nil {
				tv.LastNACK = ts.LastNACK.Version + ": " + ts.LastNACK.Error
			}
			v.Types[xdsres.ShortType(t)] = tv
		}
		out = append(out, v)
	}
	return out
}

func setName(s *snapshot.Set) string {
	if s == nil {
		return ""
	}
	return s.Revision + "@" + s.Hash()
}
