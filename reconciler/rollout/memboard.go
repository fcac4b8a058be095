package rollout

import (
	"context"
	"sort"
	"sync"

	"gitxds.dev/gitxds/reconciler/status"
)

// MemoryBoard is a Board in memory: several replicas in one process (tests,
// demos) each take a Client. It fences writes as the Kubernetes Board
// does: a FleetState of a lower epoch than the stored one, or of the same
// epoch from a client that has not seen the stored version, is refused
// with ErrFenced.
type MemoryBoard struct {
	mu      sync.Mutex
	state   *FleetState
	version int64
	reports map[string]ReplicaReport
	clients []*memoryClient
	// Writes counts the writes, for figures.
	rolloutWrites, reportWrites int
}

// NewMemoryBoard returns an empty board.
func NewMemoryBoard() *MemoryBoard { return &MemoryBoard{reports: map[string]ReplicaReport{}} }

// Client returns one replica's view of the board.
func (m *MemoryBoard) Client() Board {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &memoryClient{m: m, changes: make(chan struct{}, 1)}
	m.clients = append(m.clients, c)
	return c
}

// Writes are how many FleetState and report writes the board accepted.
func (m *MemoryBoard) Writes() (rollout, reports int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rolloutWrites, m.reportWrites
}

// changed signals every client. Caller holds m.mu.
func (m *MemoryBoard) changed() {
	for _, c := range m.clients {
		select {
		case c.changes <- struct{}{}:
		default:
		}
	}
}

type memoryClient struct {
	m       *MemoryBoard
	seen    int64 // the FleetState version this client last read or wrote
	changes chan struct{}
}

var _ Board = (*memoryClient)(nil)

func (c *memoryClient) Rollout(context.Context) (FleetState, bool, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if c.m.state == nil {
		return FleetState{}, false, nil
	}
	c.seen = c.m.version
	return copyState(*c.m.state), true, nil
}

func (c *memoryClient) PutRollout(_ context.Context, s FleetState) error {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.state; st != nil && (s.Epoch < st.Epoch || s.Epoch == st.Epoch && c.seen != m.version) {
		return ErrFenced
	}
	s = copyState(s)
	m.state = &s
	m.version++
	c.seen = m.version
	m.rolloutWrites++
	m.changed()
	return nil
}

func (c *memoryClient) Reports(context.Context) ([]ReplicaReport, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	out := make([]ReplicaReport, 0, len(c.m.reports))
	for _, r := range c.m.reports {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Replica < out[j].Replica })
	return out, nil
}

func (c *memoryClient) PutReport(_ context.Context, r ReplicaReport) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	r.PendingNodes = append([]string(nil), r.PendingNodes...)
	r.StageNodes = append([]string(nil), r.StageNodes...)
	r.NACKs = append([]NodeNACK(nil), r.NACKs...)
	c.m.reports[r.Replica] = r
	c.m.reportWrites++
	c.m.changed()
	return nil
}

func (c *memoryClient) Changes() <-chan struct{} { return c.changes }

func copyState(s FleetState) FleetState {
	s.Stages = append([]StageSpec(nil), s.Stages...)
	s.Failed = append([]status.FailedRevision(nil), s.Failed...)
	if s.BakeUntil != nil {
		t := *s.BakeUntil
		s.BakeUntil = &t
	}
	return s
}
