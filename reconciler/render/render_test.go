package render

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/testenv/golden"
)

// A case is a txtar archive, testdata/<case>.txtar: a comment of options
// (YAML, after `#` comment lines), then `-- path --` sections. Sections named
// want.* hold the expected result (golden, rewritten by -update); every other
// section is a repository file.
//
//	overlay     the overlay to render (default overlays/dev)
//	maxObjects  Options.MaxObjects
//	keepsOrigin the overlay asks for origin annotations (they stay)
//	is          the sentinel the error must match (remote, outside, plugin,
//	            malformed, notfound, reserved, toomany)
//
//	want.objects  one line per object: "<Kind ns/name> <file>"
//	want.failed   one line per team directory left out of the render
//	want.error    the error message
type testCase struct {
	name string
	*golden.Archive
	opts struct {
		Overlay    string `json:"overlay"`
		MaxObjects int    `json:"maxObjects"`
		Is         string `json:"is"`
		// KeepsOrigin: the overlay asks for origin annotations itself.
		KeepsOrigin bool `json:"keepsOrigin"`
	}
}

func loadCases(t testing.TB) []*testCase {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	var cases []*testCase
	for _, p := range paths {
		cases = append(cases, loadCase(t, golden.Load(t, p)))
	}
	return cases
}

// loadCase reads the options of the case archive a.
func loadCase(t testing.TB, a *golden.Archive) *testCase {
	t.Helper()
	c := &testCase{name: strings.TrimSuffix(filepath.Base(a.Path), ".txtar"), Archive: a}
	var opts []string
	for _, l := range strings.Split(string(a.Comment), "\n") {
		if !strings.HasPrefix(l, "#") {
			opts = append(opts, l)
		}
	}
	if err := yaml.UnmarshalStrict([]byte(strings.Join(opts, "\n")), &c.opts); err != nil {
		t.Fatalf("%s: header: %v", a.Path, err)
	}
	if c.opts.Overlay == "" {
		c.opts.Overlay = "overlays/dev"
	}
	return c
}

// repoFiles are the repository files of the case.
func (c *testCase) repoFiles() []txtar.File { return c.Files }

func (c *testCase) fs(t testing.TB) filesys.FileSystem {
	t.Helper()
	fsys := filesys.MakeFsInMemory()
	for _, s := range c.repoFiles() {
		if err := fsys.WriteFile("/"+s.Name, s.Data); err != nil {
			t.Fatal(err)
		}
	}
	return fsys
}

var sentinels = map[string]error{
	"remote":    ErrRemote,
	"outside":   ErrOutsideRepository,
	"plugin":    ErrPlugin,
	"malformed": ErrMalformed,
	"notfound":  ErrNotFound,
	"reserved":  ErrReservedAnnotation,
	"toomany":   ErrTooManyObjects,
	"confined":  ErrConfinement,
	"limit":     ErrLimit,
}

// TestCases renders every testdata case on an in-memory file system with real
// kustomize and compares objects and provenance, or the error, with the case.
func TestCases(t *testing.T) {
	for _, c := range loadCases(t) {
		t.Run(c.name, func(t *testing.T) {
			c := loadCase(t, golden.Open(t, c.Path))
			fsys := c.fs(t)
			before := snapshotFS(t, fsys)
			res, err := Render(fsys, c.opts.Overlay, Options{MaxObjects: c.opts.MaxObjects})
			if after := snapshotFS(t, fsys); after != before {
				t.Errorf("Render modified the caller's file system")
			}
			got := map[string]string{}
			if err != nil {
				got["error"] = err.Error() + "\n"
				var e *Error
				if !errors.As(err, &e) {
					t.Errorf("error is %T, not *Error: %v", err, err)
				} else if e.File == "" {
					t.Errorf("error names no file: %v", err)
				}
				if c.opts.Is != "" && !errors.Is(err, sentinels[c.opts.Is]) {
					t.Errorf("error does not match %s: %v", c.opts.Is, err)
				}
			} else {
				got["objects"] = objectLines(res)
				checkObjects(t, res, c.opts.KeepsOrigin)
				if len(res.Failed) > 0 {
					got["failed"] = failedLines(res)
					if c.opts.Is != "" && !errors.Is(res.Failed[0].Err, sentinels[c.opts.Is]) {
						t.Errorf("team failure does not match %s: %v", c.opts.Is, res.Failed[0].Err)
					}
				}
			}
			for _, k := range []string{"objects", "failed", "error"} {
				if g, ok := got[k]; ok {
					c.Check(k, []byte(g))
				}
			}
		})
	}
}

func objectLines(res *Result) string {
	var b strings.Builder
	for _, o := range res.Objects {
		fmt.Fprintf(&b, "%s %s\n", o.ID(), o.File)
	}
	return b.String()
}

var stagedPath = regexp.MustCompile(`repo-[0-9a-f]{32}|gitxds-[0-9a-f]{8}`)

// checkObjects checks what every consumer of a Result relies on.
func checkObjects(t *testing.T, res *Result, keepsOrigin bool) {
	t.Helper()
	for _, o := range res.Objects {
		if o.File == "" || strings.HasPrefix(o.File, "..") || strings.HasPrefix(o.File, "/") {
			t.Errorf("%s: bad File %q", o.ID(), o.File)
		}
		if stagedPath.Match(o.YAML) {
			t.Errorf("%s: staged path leaked into YAML:\n%s", o.ID(), o.YAML)
		}
		var m struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name        string            `json:"name"`
				Namespace   string            `json:"namespace"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(o.YAML, &m); err != nil {
			t.Errorf("%s: YAML does not decode: %v", o.ID(), err)
			continue
		}
		if m.APIVersion != o.APIVersion || m.Kind != o.Kind || m.Metadata.Name != o.Name || m.Metadata.Namespace != o.Namespace {
			t.Errorf("%s: fields disagree with YAML %+v", o.ID(), m)
		}
		_, hasOrigin := m.Metadata.Annotations["config.kubernetes.io/origin"]
		if hasOrigin != keepsOrigin {
			t.Errorf("%s: origin annotation present=%v, want %v", o.ID(), hasOrigin, keepsOrigin)
		}
		if m.Metadata.Annotations != nil && len(m.Metadata.Annotations) == 0 {
			t.Errorf("%s: empty metadata.annotations left in YAML", o.ID())
		}
	}
}

func snapshotFS(t *testing.T, fsys filesys.FileSystem) string {
	t.Helper()
	var lines []string
	err := fsys.Walk("/", func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := fsys.ReadFile(p)
		lines = append(lines, p+"\x00"+string(data))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\x01")
}

// failedLines is one line per team directory left out of a render.
func failedLines(res *Result) string {
	var b strings.Builder
	for _, f := range res.Failed {
		fmt.Fprintf(&b, "%s (%s): %v\n", f.Team.Dir(), f.Entry, f.Err)
	}
	return b.String()
}
