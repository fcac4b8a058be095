package reconciler

import (
	"errors"

	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/state"
	"gitxds.dev/gitxds/reconciler/status"
)

// persisted is what survives a restart.
type persisted struct {
	LastGood         *snapshot.Set
	LastGoodRevision string
	// Accepted holds the last accepted version of every object, for the
	// model's fallback when an accepted object becomes invalid.
	Accepted map[string]render.Object
	// FirstAccepted holds when each accepted object was first accepted:
	// conflicts between routes go to the oldest.
	FirstAccepted map[string]model.Since
	// Applied maps content hashes that completed a rollout to their revision
	// (a revert to one of them may skip the stages).
	Applied map[string]string
	// Failed revisions are not retried until a new commit arrives.
	Failed []status.FailedRevision
}

// Store persists the reconciler's state in --state-dir with atomic writes.
type Store struct {
	s         *state.Store
	savedHash string // hash of the last good snapshot on disk
}

// OpenStore opens (creating) the state directory.
func OpenStore(dir string) (*Store, error) {
	s, err := state.Open(dir)
	if err != nil {
		return nil, err
	}
	return &Store{s: s}, nil
}

type persistedMeta struct {
	LastGoodRevision string                   `json:"lastGoodRevision"`
	Accepted         map[string]render.Object `json:"accepted,omitempty"`
	FirstAccepted    map[string]model.Since   `json:"firstAccepted,omitempty"`
	Applied          map[string]string        `json:"applied,omitempty"`
	Failed           []status.FailedRevision  `json:"failed,omitempty"`
}

// Load returns the persisted state; an empty one on first start.
func (s *Store) Load() (*persisted, error) {
	p := &persisted{}
	var meta persistedMeta
	switch err := s.s.Load(state.Reconciler, &meta); {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		p.LastGoodRevision, p.Accepted, p.Applied, p.Failed = meta.LastGoodRevision, meta.Accepted, meta.Applied, meta.Failed
		p.FirstAccepted = meta.FirstAccepted
	}
	switch set, err := s.s.LoadLastGood(); {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		p.LastGood = set
		s.savedHash = set.Hash() + set.Revision
		if p.LastGoodRevision == "" {
			p.LastGoodRevision = set.Revision
		}
	}
	return p, nil
}

// SaveHistory persists the history of revisions.
func (s *Store) SaveHistory(h []status.Revision) error { return s.s.Save(state.History, h) }

// LoadHistory returns the persisted history of revisions (none on first start).
func (s *Store) LoadHistory() ([]status.Revision, error) {
	var h []status.Revision
	if err := s.s.Load(state.History, &h); err != nil && !errors.Is(err, state.ErrNotFound) {
		return nil, err
	}
	return h, nil
}

// SaveRollout persists the rollout in progress (its stage, nodes, gates).
func (s *Store) SaveRollout(ro status.Rollout) error { return s.s.Save(state.Rollout, ro) }

// LoadRollout returns the last persisted rollout, if any.
func (s *Store) LoadRollout() (*status.Rollout, error) {
	var ro status.Rollout
	switch err := s.s.Load(state.Rollout, &ro); {
	case errors.Is(err, state.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &ro, nil
}

// Save writes the state: the snapshot first, then the metadata that points
// at it, each atomically.
func (s *Store) Save(p *persisted) error {
	if p.LastGood != nil && p.LastGood.Hash()+p.LastGood.Revision != s.savedHash {
		if err := s.s.SaveLastGood(p.LastGood); err != nil {
			return err
		}
		s.savedHash = p.LastGood.Hash() + p.LastGood.Revision
	}
	return s.s.Save(state.Reconciler, persistedMeta{LastGoodRevision: p.LastGoodRevision, Accepted: p.Accepted, FirstAccepted: p.FirstAccepted, Applied: p.Applied, Failed: p.Failed})
}

// memory is what the model needs of the state for the next revision.
func (p *persisted) memory() *model.Memory {
	return &model.Memory{Accepted: p.Accepted, FirstAccepted: p.FirstAccepted}
}

// keptFailed is how many failed revisions the state keeps, the last ones.
const keptFailed = 20

// addFailed records fr as failed, keeping the last keptFailed.
func (p *persisted) addFailed(fr status.FailedRevision) {
	p.Failed = append(p.Failed, fr)
	if n := len(p.Failed); n > keptFailed {
		p.Failed = p.Failed[n-keptFailed:]
	}
}

// remember keeps what the model of an applied build remembers.
func (p *persisted) remember(out *model.Output) {
	p.Accepted, p.FirstAccepted = out.Accepted, out.FirstAccepted
}

// SaveBuilding persists the marker of the build about to run.
func (s *Store) SaveBuilding(m BuildMarker) error { return s.s.Save(state.Building, m) }

// LoadBuilding returns the build marker, or nil when no build runs.
func (s *Store) LoadBuilding() (*BuildMarker, error) {
	var m BuildMarker
	switch err := s.s.Load(state.Building, &m); {
	case errors.Is(err, state.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &m, nil
}

// ClearBuilding removes the build marker.
func (s *Store) ClearBuilding() error { return s.s.Delete(state.Building) }
