package gloo

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/status"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// archive is a txtar-style file: a comment, then sections "-- name --".
type archive struct {
	comment []byte
	files   []section
}

type section struct {
	name string
	data []byte
}

func parseArchive(data []byte) archive {
	var a archive
	cur := &a.comment
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		s := strings.TrimRight(string(line), "\n")
		if strings.HasPrefix(s, "-- ") && strings.HasSuffix(s, " --") && len(s) > 6 {
			a.files = append(a.files, section{name: s[3 : len(s)-3]})
			cur = &a.files[len(a.files)-1].data
			continue
		}
		*cur = append(*cur, line...)
	}
	return a
}

func (a archive) format() []byte {
	var b bytes.Buffer
	b.Write(a.comment)
	for _, f := range a.files {
		b.WriteString("-- " + f.name + " --\n")
		b.Write(f.data)
		if len(f.data) > 0 && !bytes.HasSuffix(f.data, []byte("\n")) {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// TestGolden converts the in/ files of each testdata/*.txtar and compares
// the repository written (out/<path>) and its report with the archive's
// out/ sections. Regenerate with go test ./convert/gloo -update.
func TestGolden(t *testing.T) {
	cases, _ := filepath.Glob("testdata/*.txtar")
	if len(cases) == 0 {
		t.Fatal("no golden cases")
	}
	for _, file := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			a := parseArchive(data)
			var inputs []Input
			want := map[string][]byte{}
			var keep []section
			for _, f := range a.files {
				switch {
				case strings.HasPrefix(f.name, "in/"):
					inputs = append(inputs, Input{Name: f.name, Data: f.data})
					keep = append(keep, f)
				case strings.HasPrefix(f.name, "out/"):
					want[strings.TrimPrefix(f.name, "out/")] = f.data
				}
			}
			res, err := Convert(inputs, Options{})
			if err != nil {
				t.Fatal(err)
			}
			paths := make([]string, 0, len(res.Files))
			for p := range res.Files {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			if *update {
				for _, p := range paths {
					keep = append(keep, section{name: "out/" + p, data: res.Files[p]})
				}
				a.files = keep
				if err := os.WriteFile(file, a.format(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, p := range paths {
				if w, ok := want[p]; !ok {
					t.Errorf("unexpected file %s:\n%s", p, res.Files[p])
				} else if !bytes.Equal(w, res.Files[p]) {
					t.Errorf("%s differs; got:\n%s\nwant:\n%s", p, res.Files[p], w)
				}
				delete(want, p)
			}
			for p := range want {
				t.Errorf("missing file %s", p)
			}
			// The same inputs give the same bytes.
			again, err := Convert(inputs, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				if !bytes.Equal(again.Files[p], res.Files[p]) {
					t.Errorf("%s differs between two conversions", p)
				}
			}
		})
	}
}

// TestConvertedRepositoryValidates: every golden's converted repository
// passes `gitxds validate` (the pipeline accepts every object, all
// references resolve) and serves a route for each converted rule.
func TestConvertedRepositoryValidates(t *testing.T) {
	cases, _ := filepath.Glob("testdata/*.txtar")
	for _, file := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var inputs []Input
			for _, f := range parseArchive(data).files {
				if strings.HasPrefix(f.name, "in/") {
					inputs = append(inputs, Input{Name: f.name, Data: f.data})
				}
			}
			res, err := Convert(inputs, Options{})
			if err != nil {
				t.Fatal(err)
			}
			b := validate(t, res.Files, "overlays/production")
			// Every converted HTTPRoute serves routes.
			served := map[string]bool{}
			for _, g := range b.Model.IR.Gateways {
				for _, l := range g.Listeners {
					for _, vh := range l.VirtualHosts {
						for _, r := range vh.Routes {
							served[r.Owner.Namespace+"/"+r.Owner.Name] = true
						}
					}
				}
			}
			converted := 0
			for _, o := range b.Model.Status {
				if o.Kind == "HTTPRoute" {
					converted++
					if !served[o.Namespace+"/"+o.Name] {
						t.Errorf("HTTPRoute %s/%s serves no route", o.Namespace, o.Name)
					}
				}
			}
			if converted == 0 {
				t.Fatal("no HTTPRoute converted")
			}
		})
	}
}

// validate runs the pipeline of `gitxds validate` on files and fails on any
// object that is not fully accepted.
func validate(t *testing.T, files map[string][]byte, overlay string) *pipeline.Result {
	t.Helper()
	fsys := filesys.MakeFsInMemory()
	for p, data := range files {
		if err := fsys.MkdirAll(filepath.Dir("/" + p)); err != nil {
			t.Fatal(err)
		}
		if err := fsys.WriteFile("/"+p, data); err != nil {
			t.Fatal(err)
		}
	}
	b, err := pipeline.New(render.Options{}).Run(fsys, overlay, "converted", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range b.Rejected() {
		t.Errorf("rejected: %s", status.Line(o))
	}
	return b
}
