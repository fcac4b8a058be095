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

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// ErrNotFound is returned (wrapped) by Load and LoadLastGood when nothing
// was saved under that name.
var ErrNotFound = errors.New("state: not found")

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
func (s *Store) Path(name Document) string { return filepath.Join(s.dir, string(name)+fileExt) }

// SaveLastGood persists the last good snapshot (document LastGood).
func (s *Store) SaveLastGood(set *snapshot.Set) error {
	if set == nil {
		return errors.New("state: save last good: nil set")
	}
	b, err := snapshot.Marshal(set)
	if err != nil {
		return fmt.Errorf("state: save last good: %w", err)
	}
	return s.Save(LastGood, json.RawMessage(b))
}

// LoadLastGood reads what SaveLastGood wrote; ErrNotFound (wrapped) when
// nothing was saved, an error naming the file when it does not decode.
func (s *Store) LoadLastGood() (*snapshot.Set, error) {
	var raw json.RawMessage
	if err := s.Load(LastGood, &raw); err != nil {
		return nil, err
	}
	set, err := snapshot.Unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("state: %s: %w", s.Path(LastGood), err)
	}
	return set, nil
}

// Save writes v as JSON under name, atomically.
func (s *Store) Save(name Document, v any) error {
	if !validName.MatchString(string(name)) {
		return fmt.Errorf("state: invalid name %q", name)
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("state: encode %s: %w", name, err)
	}
	data = append(data, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeAtomic(s.dir, string(name)+fileExt, data); err != nil {
		return fmt.Errorf("state: write %s: %w", s.Path(name), err)
	}
	return nil
}

// Load decodes the JSON saved under name into v. A missing file is
// ErrNotFound; a file that does not decode (empty, truncated, not JSON,
// trailing data, a value of the wrong shape) is an error naming the path.
func (s *Store) Load(name Document, v any) error {
	if !validName.MatchString(string(name)) {
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
func (s *Store) Delete(name Document) error {
	if !validName.MatchString(string(name)) {
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
