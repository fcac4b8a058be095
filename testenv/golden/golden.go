// Package golden is the one golden-file harness of the tests: it compares
// what a test produces with what testdata holds, and with -update rewrites
// testdata instead:
//
//	go test ./reconciler/render -update
//	go -C tools tool task -d .. golden   (every package's goldens)
//
// A golden comes in one of two shapes.
//
//   - A case archive: one txtar file (golang.org/x/tools/txtar) per case, a
//     comment saying what the case shows, then sections. Sections named
//     want.<name> are goldens; every other section is an input of the case.
//     Open reads an archive for the test that checks it, Archive.Check
//     compares a want section with what the test produced. Under -update the
//     archive is rewritten when the test ends: the comment and the inputs as
//     they were, then the want sections in the order the test checked them.
//   - A plain file that other things read as it is (docs/reference.md, a
//     translate case's out.yaml): File compares or rewrites it whole.
//
// Orphans fail the test and -update deletes them: a want section the test
// did not check (the test no longer produces it), and a plain golden file
// that belongs to no case (Orphans).
//
// A txtar section is empty or ends in a newline, so what a test produces is
// compared, and stored, with a final newline added when it has none.
package golden

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/txtar"
)

// update is the -update flag of every test binary that imports this
// package; the test packages define none of their own.
var update = flag.Bool("update", false, "rewrite the golden files (want.* sections of testdata archives, plain golden files) and delete orphaned ones")

// WantPrefix starts the name of every golden section of an archive.
const WantPrefix = "want."

// Archive is one case archive: its comment, its inputs, and its want
// sections.
type Archive struct {
	// Path is the archive's file.
	Path string
	// Comment is the text before the first section.
	Comment []byte
	// Files are the input sections (every section not named want.*), in
	// the archive's order.
	Files []txtar.File

	want []txtar.File // the want sections as read, names without WantPrefix

	// Set by Open: the test that checks the archive and what it checked.
	t        testing.TB
	got      []txtar.File
	mismatch bool
}

// Load reads the archive at path for its inputs (and its want sections,
// through Want) without checking it; t fails if it cannot be read.
func Load(t testing.TB, path string) *Archive {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ar := txtar.Parse(data)
	a := &Archive{Path: path, Comment: ar.Comment}
	for _, f := range ar.Files {
		if name, ok := strings.CutPrefix(f.Name, WantPrefix); ok {
			a.want = append(a.want, txtar.File{Name: name, Data: f.Data})
		} else {
			a.Files = append(a.Files, f)
		}
	}
	return a
}

// Open reads the archive at path for t to check with Check. When t ends,
// every want section t did not check fails t as an orphan; under -update
// the archive is rewritten with what t checked instead (orphans go). A
// test that failed otherwise, or was skipped, leaves the archive alone.
func Open(t testing.TB, path string) *Archive {
	t.Helper()
	a := Load(t, path)
	a.t = t
	t.Cleanup(a.finish)
	return a
}

// Cases runs a subtest for each archive of dir but dir/base.txtar, named
// after the archive and handed it opened (Open), with base.txtar loaded
// (Load): the tests whose cases are each a change to one base tree.
func Cases(t *testing.T, dir string, run func(t *testing.T, name string, base, c *Archive)) {
	t.Helper()
	base := Load(t, filepath.Join(dir, "base.txtar"))
	paths, err := filepath.Glob(filepath.Join(dir, "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".txtar")
		if name == "base" {
			continue
		}
		t.Run(name, func(t *testing.T) { run(t, name, base, Open(t, p)) })
	}
}

// Want returns the data of the section want.<name>.
func (a *Archive) Want(name string) ([]byte, bool) {
	for _, f := range a.want {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}

// Check compares got with the section want.<name>: a difference, or no
// such section, fails the test with a diff. Under -update it records got
// as the new want.<name> instead.
func (a *Archive) Check(name string, got []byte) {
	if a.t == nil {
		panic("golden: Check on an archive that was not opened with Open")
	}
	a.t.Helper()
	got = withNL(got)
	for _, g := range a.got {
		if g.Name == name {
			a.t.Errorf("%s: want.%s checked twice", a.Path, name)
			return
		}
	}
	a.got = append(a.got, txtar.File{Name: name, Data: got})
	if *update {
		return
	}
	want, ok := a.Want(name)
	if !ok {
		a.mismatch = true
		a.t.Errorf("%s: no section want.%s (-update adds it); got:\n%s", a.Path, name, got)
		return
	}
	if d := lineDiff(want, got); d != "" {
		a.mismatch = true
		a.t.Errorf("%s: want.%s differs (-want +got; -update rewrites it):\n%s", a.Path, name, d)
	}
}

// finish reports the orphaned want sections, or rewrites the archive.
func (a *Archive) finish() {
	t := a.t
	if t.Skipped() {
		return
	}
	checked := map[string]bool{}
	for _, g := range a.got {
		checked[g.Name] = true
	}
	if *update {
		if t.Failed() {
			t.Logf("%s not rewritten: the test failed", a.Path)
			return
		}
		for _, w := range a.want {
			if !checked[w.Name] {
				t.Logf("%s: deleting the orphaned section want.%s", a.Path, w.Name)
			}
		}
		ar := &txtar.Archive{Comment: a.Comment, Files: append([]txtar.File(nil), a.Files...)}
		for _, g := range a.got {
			ar.Files = append(ar.Files, txtar.File{Name: WantPrefix + g.Name, Data: g.Data})
		}
		write(t, a.Path, txtar.Format(ar))
		return
	}
	// A test that stopped for another reason may not have reached a check.
	if t.Failed() && !a.mismatch {
		return
	}
	for _, w := range a.want {
		if !checked[w.Name] {
			t.Errorf("%s: orphaned section want.%s: the test no longer produces it (-update deletes it)", a.Path, w.Name)
		}
	}
}

// File compares got with the plain golden file at path, byte for byte: a
// difference, or no such file, fails t with a diff. Under -update it
// writes got to path instead.
func File(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		write(t, path, got)
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: no golden file (-update writes it)", path)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if d := lineDiff(want, got); d != "" {
		t.Errorf("%s differs (-want +got; -update rewrites it):\n%s", path, d)
	}
}

// Orphans fails t for every file matching pattern (a filepath.Glob
// pattern) that is not one of goldens, the golden files of the test's
// cases; under -update it deletes them. It looks at the cases, not at the
// checks that ran, so a test run with -run checks (and deletes) no more
// than a whole run.
func Orphans(t testing.TB, pattern string, goldens []string) {
	t.Helper()
	matches, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, g := range goldens {
		known[filepath.Clean(g)] = true
	}
	for _, m := range matches {
		if known[filepath.Clean(m)] {
			continue
		}
		if *update {
			t.Logf("deleting the orphaned golden file %s", m)
			if err := os.Remove(m); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("orphaned golden file %s: no test case produces it (-update deletes it)", m)
	}
}

// write stores data at path unless it already holds it.
func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrote %s", path)
}

// withNL is data as a txtar section holds it: empty, or ending in a
// newline.
func withNL(data []byte) []byte {
	if len(data) == 0 || data[len(data)-1] == '\n' {
		return data
	}
	return append(data[:len(data):len(data)], '\n')
}

// lineDiff is a line-by-line diff of want and got (-want +got), empty when
// they are equal; a line's whitespace shows in its quotes.
func lineDiff(want, got []byte) string {
	if bytes.Equal(want, got) {
		return ""
	}
	return cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n"))
}
