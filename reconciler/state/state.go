// Package state persists what gitxds must remember across restarts in
// --state-dir: the last good snapshot (so nodes get it at once after a
// restart, even with Git unreachable) and small JSON documents such as the
// rollout state and the failed revisions.
//
// Every write is atomic: a temporary file in the same directory, fsync,
// rename over the target, fsync of the directory. A crash leaves either the
// old file or the new one, never a torn one; stray temporary files are
// ignored (and removed by Open). A file that exists but cannot be decoded is
// an error that names its path, never a silent empty value.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// ErrNotFound is returned (wrapped) by Load and LoadLastGood when nothing
// was saved under that name.
var ErrNotFound = errors.New("state: not found")

// LastGoodName is the document SaveLastGood writes.
const LastGoodName = "last-good"

const (
	fileExt   = ".json"
	tmpPrefix = ".tmp-"
)

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)

// Store is a state directory. It is safe for concurrent use.
type Store struct {
	dir string
	mu  sync.Mutex // serialises writes of the same name
}

// Open returns the store in dir, creating the directory (0700) if needed,
// and removes temporary files a crash may have left behind.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("state: empty directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: create %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("state: read %s: %w", dir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			_ = os.Remove(filepath.Join(dir, e.Name())) // best effort: ignored anyway
		}
	}
	return &Store{dir: dir}, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// Path is the file a name is stored in.
func (s *Store) Path(name string) string { return filepath.Join(s.dir, name+fileExt) }

// LastGood is the last snapshot that completed a rollout.
type LastGood struct {
	Set       *snapshot.Set
	Revision  string
	AppliedAt time.Time
	// Extra is any JSON the reconciler wants kept with it (for instance the
	// last accepted version of each object).
	Extra map[string]json.RawMessage
}

type lastGoodFile struct {
	Revision  string                     `json:"revision"`
	AppliedAt time.Time                  `json:"appliedAt"`
	Snapshot  json.RawMessage            `json:"snapshot"`
	Extra     map[string]json.RawMessage `json:"extra,omitempty"`
}

// SaveLastGood persists lg atomically.
func (s *Store) SaveLastGood(lg LastGood) error {
	if lg.Set == nil {
		return errors.New("state: save last good: nil set")
	}
	snap, err := snapshot.Marshal(lg.Set)
	if err != nil {
		return fmt.Errorf("state: save last good: %w", err)
	}
	return s.Save(LastGoodName, lastGoodFile{
		Revision:  lg.Revision,
		AppliedAt: lg.AppliedAt.UTC(),
		Snapshot:  snap,
		Extra:     lg.Extra,
	})
}

// LoadLastGood reads what SaveLastGood wrote; ErrNotFound when none.
func (s *Store) LoadLastGood() (*LastGood, error) {
	var f lastGoodFile
	if err := s.Load(LastGoodName, &f); err != nil {
		return nil, err
	}
	path := s.Path(LastGoodName)
	if len(f.Snapshot) == 0 {
		return nil, fmt.Errorf("state: %s: no snapshot in file", path)
	}
	set, err := snapshot.Unmarshal(f.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("state: %s: %w", path, err)
	}
	return &LastGood{Set: set, Revision: f.Revision, AppliedAt: f.AppliedAt, Extra: f.Extra}, nil
}

// Save writes v as JSON under name, atomically.
func (s *Store) Save(name string, v any) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("state: invalid name %q", name)
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("state: encode %s: %w", name, err)
	}
	data = append(data, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeAtomic(s.dir, name+fileExt, data); err != nil {
		return fmt.Errorf("state: write %s: %w", s.Path(name), err)
	}
	return nil
}

// Load decodes the JSON saved under name into v. A missing file is
// ErrNotFound; a file that does not decode (empty, truncated, not JSON,
// trailing data, a value of the wrong shape) is an error naming the path.
func (s *Store) Load(name string, v any) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("state: invalid name %q", name)
	}
	path := s.Path(name)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, path)
	}
	if err != nil {
		return fmt.Errorf("state: read %s: %w", path, err)
	}
	if err := decodeStrict(data, v); err != nil {
		return fmt.Errorf("state: corrupt file %s: %w", path, err)
	}
	return nil
}

// Delete removes what was saved under name; no error if nothing was.
func (s *Store) Delete(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("state: invalid name %q", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := os.Remove(s.Path(name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: delete %s: %w", s.Path(name), err)
	}
	return syncDir(s.dir)
}
