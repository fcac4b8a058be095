package diff_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/diff"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
)

var update = flag.Bool("update", false, "rewrite the want.* sections of testdata/*.txtar")

// overlay every case renders.
const overlay = "overlays/prod"

// A case is testdata/<case>.txtar. Its comment says what it shows. Its
// sections:
//
//	-- base/<path> --   a file of the base tree (added to testdata/base.txtar)
//	-- head/<path> --   a file of the head tree; "#remove" removes the file
//	-- want.text --, -- want.markdown --, -- want.json --, -- want.impact --
//	                    the expected outputs (rewritten by -update)
//
// The head tree is the base tree with the head/ files applied. Both are
// rendered with the production pipeline, in memory, and diffed.
func TestGolden(t *testing.T) {
	base := readArchive(t, "testdata/base.txtar")
	paths, err := filepath.Glob("testdata/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".txtar")
		if name == "base" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			c := readArchive(t, p)
			baseFiles, headFiles := trees(base, c)
			pipe := pipeline.New(render.Options{})
			from, err := pipe.Run(memFS(t, baseFiles), overlay, "base", nil)
			if err != nil {
				t.Fatalf("base: %v", err)
			}
			to, err := pipe.Run(memFS(t, headFiles), overlay, "head", nil)
			if err != nil {
				t.Fatalf("head: %v", err)
			}
			report := func() *diff.Report {
				rep := diff.Snapshots(from.Set, to.Set)
				rep.Owners(from.Model.IR, to.Model.IR)
				rep.Objects = diff.ObjectChanges(from.Rendered.Objects, to.Rendered.Objects, to.Model.Status)
				return rep
			}
			rep := report()
			got := map[string]string{}
			var b bytes.Buffer
			must(t, rep.WriteText(&b))
			got["text"] = b.String()
			b.Reset()
			must(t, rep.WriteMarkdown(&b))
			got["markdown"] = b.String()
			b.Reset()
			must(t, rep.WriteJSON(&b))
			got["json"] = b.String()
			imp := rep.Impact(from.Model.IR, to.Model.IR)
			got["impact"] = fmt.Sprintf("teams: %s\nhostnames: %s\nlisteners: %s\n",
				strings.Join(imp.Teams, ", "), strings.Join(imp.Hostnames, ", "), strings.Join(imp.Listeners, ", "))

			// The same diff again is byte for byte the same.
			var again bytes.Buffer
			must(t, report().WriteJSON(&again))
			if again.String() != got["json"] {
				t.Error("two diffs of the same sets differ")
			}
			// Values read as YAML, never as go-cmp's or Go's internals.
			for out, s := range got {
				for _, bad := range []string{"protocmp", "Inverse(", "routev3.", "listenerv3."} {
					if strings.Contains(s, bad) {
						t.Errorf("%s output prints %q", out, bad)
					}
				}
			}
			c.check(t, p, got)
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var outputs = []string{"text", "markdown", "json", "impact"}

// archive is a parsed txtar file.
type archive struct {
	comment  string
	sections []section
}

type section struct {
	name string
	data string
}

func readArchive(t *testing.T, path string) *archive {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := &archive{}
	var cur *section
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trim := strings.TrimRight(line, "\n")
		if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") && len(trim) > 6 {
			a.sections = append(a.sections, section{name: strings.TrimSpace(trim[3 : len(trim)-3])})
			cur = &a.sections[len(a.sections)-1]
			continue
		}
		if cur == nil {
			a.comment += line
		} else {
			cur.data += line
		}
	}
	return a
}

// trees applies a case to the base archive.
func trees(base, c *archive) (from, to map[string]string) {
	from = map[string]string{}
	for _, s := range base.sections {
		from[s.name] = s.data
	}
	for _, s := range c.sections {
		if n, ok := strings.CutPrefix(s.name, "base/"); ok {
			from[n] = s.data
		}
	}
	to = map[string]string{}
	for k, v := range from {
		to[k] = v
	}
	for _, s := range c.sections {
		if n, ok := strings.CutPrefix(s.name, "head/"); ok {
			if strings.TrimSpace(s.data) == "#remove" {
				delete(to, n)
			} else {
				to[n] = s.data
			}
		}
	}
	return from, to
}

func memFS(t *testing.T, files map[string]string) filesys.FileSystem {
	t.Helper()
	fsys := filesys.MakeFsInMemory()
	for name, data := range files {
		must(t, fsys.WriteFile("/"+name, []byte(data)))
	}
	return fsys
}

// check compares got with the want.* sections, or rewrites them.
func (a *archive) check(t *testing.T, path string, got map[string]string) {
	t.Helper()
	if *update {
		var b strings.Builder
		b.WriteString(a.comment)
		for _, s := range a.sections {
			if !strings.HasPrefix(s.name, "want.") {
				fmt.Fprintf(&b, "-- %s --\n%s", s.name, s.data)
			}
		}
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		sort.SliceStable(keys, func(i, j int) bool { return order(keys[i]) < order(keys[j]) })
		for _, k := range keys {
			fmt.Fprintf(&b, "-- want.%s --\n%s", k, got[k])
		}
		must(t, os.WriteFile(path, []byte(b.String()), 0o644))
		return
	}
	for _, k := range outputs {
		want, ok := a.want(k)
		if !ok {
			t.Errorf("%s: no want.%s section (run go test ./reconciler/diff -update)", path, k)
			continue
		}
		if want != got[k] {
			t.Errorf("%s: want.%s differs; run go test ./reconciler/diff -update and review the diff. Got:\n%s", path, k, got[k])
		}
	}
}

func order(k string) int {
	for i, o := range outputs {
		if o == k {
			return i
		}
	}
	return len(outputs)
}

func (a *archive) want(name string) (string, bool) {
	for _, s := range a.sections {
		if s.name == "want."+name {
			return s.data, true
		}
	}
	return "", false
}
