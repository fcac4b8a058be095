package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a test the harness runs against: it records what the
// harness reports instead of failing the real test.
type recorder struct {
	testing.TB // the real test, for what recorder does not override
	errors     []string
	logs       []string
	cleanups   []func()
	failed     bool
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Error(args ...any)                 { r.Errorf("%s", fmt.Sprint(args...)) }
func (r *recorder) Fatal(args ...any)                 { r.Error(args...); runtime.Goexit() }
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Failed() bool     { return r.failed }
func (r *recorder) Skipped() bool    { return false }

// run runs body as a test would run (a Fatal stops it), then its
// cleanups, and returns what the harness reported.
func run(t *testing.T, updating bool, body func(tb testing.TB)) *recorder {
	t.Helper()
	old := *update
	*update = updating
	defer func() { *update = old }()
	r := &recorder{TB: t}
	inGoroutine(func() { body(r) })
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		inGoroutine(r.cleanups[i])
	}
	return r
}

func inGoroutine(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

const caseArchive = `What the case shows.
-- in/a.yaml --
a: 1
-- want.out --
old
-- want.gone --
no longer produced
`

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantReport fails t unless exactly one report of r contains every part.
func wantReport(t *testing.T, reports []string, parts ...string) {
	t.Helper()
	n := 0
	for _, e := range reports {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(e, p)
		}
		if all {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d reports contain %q; reports:\n%s", n, parts, strings.Join(reports, "\n"))
	}
}

// A want section that differs from what the test produced fails the test
// with a diff, and the archive stays as it was.
func TestCheckMismatchFails(t *testing.T) {
	p := writeFile(t, "c.txtar", caseArchive)
	r := run(t, false, func(tb testing.TB) {
		a := Open(tb, p)
		if len(a.Files) != 1 || a.Files[0].Name != "in/a.yaml" || string(a.Files[0].Data) != "a: 1\n" {
			tb.Errorf("inputs %+v; want in/a.yaml alone", a.Files)
		}
		a.Check("out", []byte("new"))
		a.Check("gone", []byte("no longer produced\n"))
	})
	if !r.failed {
		t.Fatal("a differing want section passed")
	}
	wantReport(t, r.errors, "want.out differs", `"old",`, `"new",`)
	if len(r.errors) != 1 {
		t.Errorf("reports %q; want only the difference", r.errors)
	}
	if got := readFile(t, p); got != caseArchive {
		t.Errorf("the archive changed without -update:\n%s", got)
	}
}

// What matches passes; a section the test checks and the archive lacks
// fails.
func TestCheckMatchAndMissing(t *testing.T) {
	p := writeFile(t, "c.txtar", caseArchive)
	r := run(t, false, func(tb testing.TB) {
		a := Open(tb, p)
		a.Check("out", []byte("old\n"))
		a.Check("gone", []byte("no longer produced")) // stored with a final newline
	})
	if r.failed {
		t.Fatalf("matching sections failed: %q", r.errors)
	}
	r = run(t, false, func(tb testing.TB) {
		a := Open(tb, p)
		a.Check("out", []byte("old\n"))
		a.Check("gone", []byte("no longer produced\n"))
		a.Check("extra", []byte("x\n"))
	})
	wantReport(t, r.errors, "no section want.extra", "x")
}

// A want section the test did not check is an orphan: reported without
// -update.
func TestOrphanedSectionReported(t *testing.T) {
	p := writeFile(t, "c.txtar", caseArchive)
	r := run(t, false, func(tb testing.TB) {
		Open(tb, p).Check("out", []byte("old\n"))
	})
	if !r.failed {
		t.Fatal("an orphaned want section passed")
	}
	wantReport(t, r.errors, "orphaned section want.gone")
	if len(r.errors) != 1 {
		t.Errorf("reports %q; want only the orphan", r.errors)
	}
	// A test that stopped before its checks reports its own failure, not
	// orphans.
	r = run(t, false, func(tb testing.TB) {
		Open(tb, p)
		tb.Fatal("stopped early")
	})
	if len(r.errors) != 1 || r.errors[0] != "stopped early" {
		t.Errorf("reports %q; want only the test's own failure", r.errors)
	}
}

// -update rewrites the want sections with what the test produced, in the
// order it checked them, keeps the comment and the inputs, and deletes
// the orphans; a second run finds nothing to change.
func TestUpdateRewritesArchive(t *testing.T) {
	p := writeFile(t, "c.txtar", caseArchive)
	body := func(tb testing.TB) {
		a := Open(tb, p)
		a.Check("added", []byte("first"))
		a.Check("out", []byte("new\n"))
	}
	if r := run(t, true, body); r.failed {
		t.Fatalf("-update failed: %q", r.errors)
	}
	want := `What the case shows.
-- in/a.yaml --
a: 1
-- want.added --
first
-- want.out --
new
`
	if got := readFile(t, p); got != want {
		t.Errorf("rewritten archive:\n%s\nwant:\n%s", got, want)
	}
	if r := run(t, false, body); r.failed {
		t.Errorf("after -update: %q", r.errors)
	}
	// A test that fails under -update leaves its archive alone.
	r := run(t, true, func(tb testing.TB) {
		a := Open(tb, p)
		a.Check("out", []byte("other\n"))
		tb.Errorf("failed otherwise")
	})
	if got := readFile(t, p); got != want {
		t.Errorf("a failed test rewrote its archive:\n%s", got)
	}
	wantReport(t, r.logs, "not rewritten")
}

// A plain golden file is compared byte for byte, and written by -update.
func TestFile(t *testing.T) {
	p := writeFile(t, "reference.md", "# A\nline\n")
	r := run(t, false, func(tb testing.TB) { File(tb, p, []byte("# A\nline\n")) })
	if r.failed {
		t.Fatalf("an equal file failed: %q", r.errors)
	}
	r = run(t, false, func(tb testing.TB) { File(tb, p, []byte("# A\nline")) })
	wantReport(t, r.errors, "differs")
	r = run(t, false, func(tb testing.TB) { File(tb, p+".missing", []byte("x")) })
	wantReport(t, r.errors, "no golden file")
	r = run(t, true, func(tb testing.TB) { File(tb, p, []byte("# B\n")) })
	if r.failed || readFile(t, p) != "# B\n" {
		t.Errorf("-update: %q, file %q", r.errors, readFile(t, p))
	}
}

// A golden file that belongs to no case is an orphan: reported, and
// deleted by -update; the others stay.
func TestOrphanedFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.out.yaml", "b.out.yaml", "gone.out.yaml", "a.in.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pattern := filepath.Join(dir, "*.out.yaml")
	keep := []string{filepath.Join(dir, "a.out.yaml"), filepath.Join(dir, "b.out.yaml")}
	r := run(t, false, func(tb testing.TB) { Orphans(tb, pattern, keep) })
	wantReport(t, r.errors, "orphaned golden file", "gone.out.yaml")
	if len(r.errors) != 1 {
		t.Errorf("reports %q; want one orphan", r.errors)
	}
	r = run(t, true, func(tb testing.TB) { Orphans(tb, pattern, keep) })
	if r.failed {
		t.Fatalf("-update: %q", r.errors)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	var names []string
	for _, l := range left {
		names = append(names, filepath.Base(l))
	}
	if strings.Join(names, " ") != "a.in.yaml a.out.yaml b.out.yaml" {
		t.Errorf("after -update: %v", names)
	}
}

// Cases hands every archive of the directory but base.txtar to its own
// subtest, each with the base's files.
func TestCases(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"base.txtar": "-- a.yaml --\nbase\n",
		"one.txtar":  "-- head/a.yaml --\none\n",
		"two.txtar":  "-- head/a.yaml --\ntwo\n",
		"notes.txt":  "not an archive\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	Cases(t, dir, func(t *testing.T, name string, base, c *Archive) {
		if len(base.Files) != 1 || string(base.Files[0].Data) != "base\n" {
			t.Errorf("%s: base files %v", name, base.Files)
		}
		got = append(got, fmt.Sprintf("%s:%s:%s", t.Name()[strings.LastIndex(t.Name(), "/")+1:], name, strings.TrimSpace(string(c.Files[0].Data))))
	})
	if want := "one:one:one two:two:two"; strings.Join(got, " ") != want {
		t.Errorf("cases run: %q, want %q", strings.Join(got, " "), want)
	}
}
