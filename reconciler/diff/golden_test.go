package diff_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/diff"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/testenv/golden"
)

// overlay every case renders.
const overlay = "overlays/prod"

// A case is testdata/<case>.txtar. Its comment says what it shows. Its
// sections:
//
//	-- base/<path> --   a file of the base tree (added to testdata/base.txtar)
//	-- head/<path> --   a file of the head tree; "#remove" removes the file
//	-- want.text --, -- want.markdown --, -- want.json --, -- want.impact --
//	                    the expected outputs (golden, rewritten by -update)
//
// The head tree is the base tree with the head/ files applied. Both are
// rendered with the production pipeline, in memory, and diffed.
func TestGolden(t *testing.T) {
	golden.Cases(t, "testdata", func(t *testing.T, name string, base, c *golden.Archive) {
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
		for _, k := range outputs {
			c.Check(k, []byte(got[k]))
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var outputs = []string{"text", "markdown", "json", "impact"}

// trees applies a case to the base archive.
func trees(base, c *golden.Archive) (from, to map[string]string) {
	from = map[string]string{}
	for _, s := range base.Files {
		from[s.Name] = string(s.Data)
	}
	for _, s := range c.Files {
		if n, ok := strings.CutPrefix(s.Name, "base/"); ok {
			from[n] = string(s.Data)
		}
	}
	to = map[string]string{}
	for k, v := range from {
		to[k] = v
	}
	for _, s := range c.Files {
		if n, ok := strings.CutPrefix(s.Name, "head/"); ok {
			if strings.TrimSpace(string(s.Data)) == "#remove" {
				delete(to, n)
			} else {
				to[n] = string(s.Data)
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
