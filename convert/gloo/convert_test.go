package gloo

import (
	"bytes"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/golden"
)

// inputs are the in/ sections of a case archive: the Gloo objects to
// convert.
func inputs(a *golden.Archive) []Input {
	var in []Input
	for _, f := range a.Files {
		if strings.HasPrefix(f.Name, "in/") {
			in = append(in, Input{Name: f.Name, Data: f.Data})
		}
	}
	return in
}

// TestGolden converts the in/ files of each case archive testdata/*.txtar
// and compares each file of the repository written, its report among them,
// with the archive's section want.<path> (golden, rewritten by
// go test ./convert/gloo -update).
func TestGolden(t *testing.T) {
	cases, _ := filepath.Glob("testdata/*.txtar")
	if len(cases) == 0 {
		t.Fatal("no golden cases")
	}
	for _, file := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			a := golden.Open(t, file)
			res, err := Convert(inputs(a), Options{})
			if err != nil {
				t.Fatal(err)
			}
			paths := make([]string, 0, len(res.Files))
			for p := range res.Files {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			for _, p := range paths {
				a.Check(p, res.Files[p])
			}
			// The same inputs give the same bytes.
			again, err := Convert(inputs(a), Options{})
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
			res, err := Convert(inputs(golden.Load(t, file)), Options{})
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
