package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/golden"
)

// A golden case is testdata/<case>.in.yaml: a YAML stream of objects. Each
// document starts with comment lines that carry its options:
//
//	# file: teams/a/routes.yaml   the object's source file (required)
//	# lastAccepted: true          the object goes to Input.LastAccepted
//	# firstAccepted: 3 rev-c      Input.FirstAccepted of the object (Seq, revision)
//
// A document of comments only (a case description) is skipped, except for
// its "# revision: REV" line, which sets Input.Revision ("# services:
// kubernetes" sets Input.Services.Kubernetes, "# clusterDomain: D" its
// ClusterDomain); with a revision,
// the output lists Output.FirstAccepted too. The expected output is
// <case>.out.yaml (golden, rewritten by go test ./reconciler/model -update;
// an out.yaml without its in.yaml is an orphan): status, accepted keys and
// the IR.
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		out := filepath.Join("testdata", name+".out.yaml")
		outs = append(outs, out)
		t.Run(name, func(t *testing.T) {
			input := readCase(t, in)
			golden.File(t, out, goldenOutput(t, Build(input), input.Revision != ""))
		})
	}
	golden.Orphans(t, "testdata/*.out.yaml", outs)
}

func readCase(t *testing.T, path string) Input {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var in Input
	// The files of the case: each the documents that name it, in order
	// (Input.Source; a rejected field's line is counted in them).
	files := map[string][]string{}
	in.Source = func(file string) ([]byte, error) {
		docs, ok := files[file]
		if !ok {
			return nil, os.ErrNotExist
		}
		return []byte(strings.Join(docs, "---\n")), nil
	}
	for i, doc := range splitDocs(string(data)) {
		opts := map[string]string{}
		body := false
		for _, line := range strings.Split(doc, "\n") {
			if k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": "); ok && strings.HasPrefix(line, "# ") {
				opts[k] = strings.TrimSpace(v)
			} else if strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "#") {
				body = true
			}
		}
		if !body {
			if rev, ok := opts["revision"]; ok {
				in.Revision = rev
			}
			if opts["services"] == "kubernetes" {
				in.Services.Kubernetes = true
			}
			if d, ok := opts["clusterDomain"]; ok {
				in.Services.ClusterDomain = d
			}
			continue
		}
		obj := objectOf(t, []byte(stripOptions(doc)), opts["file"])
		if opts["file"] == "" && opts["nofile"] != "true" {
			t.Fatalf("%s: document %d has no '# file:' line", path, i)
		}
		if fa, ok := opts["firstAccepted"]; ok {
			seq, rev, _ := strings.Cut(fa, " ")
			n, err := strconv.ParseUint(seq, 10, 64)
			if err != nil {
				t.Fatalf("%s: document %d: firstAccepted %q: %v", path, i, fa, err)
			}
			if in.FirstAccepted == nil {
				in.FirstAccepted = map[string]Since{}
			}
			in.FirstAccepted[Key(obj)] = Since{Revision: rev, Seq: n}
		}
		if opts["lastAccepted"] == "true" {
			if in.LastAccepted == nil {
				in.LastAccepted = map[string]render.Object{}
			}
			in.LastAccepted[Key(obj)] = obj
			continue
		}
		in.Objects = append(in.Objects, obj)
		files[obj.File] = append(files[obj.File], string(obj.YAML))
	}
	return in
}

// stripOptions removes the option lines of a document, so that the same
// object written twice (as last accepted and as this revision's) has the
// same YAML, as it has when kustomize renders it.
func stripOptions(doc string) string {
	lines := strings.Split(doc, "\n")
	out := lines[:0]
	for _, line := range lines {
		k, _, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": ")
		if ok && strings.HasPrefix(line, "# ") && (k == "file" || k == "lastAccepted" || k == "firstAccepted") {
			continue
		}
		out = append(out, line)
	}
	return strings.TrimSpace(strings.Join(out, "\n")) + "\n"
}

func splitDocs(s string) []string {
	var docs []string
	var cur []string
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimRight(line, " ") == "---" {
			docs = append(docs, strings.Join(cur, "\n"))
			cur = nil
			continue
		}
		cur = append(cur, line)
	}
	return append(docs, strings.Join(cur, "\n"))
}

// objectOf makes the render.Object kustomize would give for a document.
func objectOf(t *testing.T, doc []byte, file string) render.Object {
	t.Helper()
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		// Malformed on purpose: take the identity from the lines, the
		// model reports the error.
		for _, line := range strings.Split(string(doc), "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
			switch k {
			case "apiVersion":
				meta.APIVersion = v
			case "kind":
				meta.Kind = v
			case "metadata":
				var m map[string]string
				if yaml.Unmarshal([]byte(v), &m) == nil {
					meta.Metadata.Name, meta.Metadata.Namespace = m["name"], m["namespace"]
				}
			}
		}
	}
	return render.Object{
		APIVersion: meta.APIVersion, Kind: meta.Kind,
		Namespace: meta.Metadata.Namespace, Name: meta.Metadata.Name,
		File: file, YAML: doc,
	}
}

type goldenCondition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// ObservedGeneration, when the object has a generation.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

type goldenStatus struct {
	Object              string            `json:"object"`
	File                string            `json:"file"`
	Line                int               `json:"line,omitempty"`
	Conditions          []goldenCondition `json:"conditions"`
	ServingLastAccepted string            `json:"servingLastAccepted,omitempty"`
	Served              string            `json:"served,omitempty"`
	Parents             []goldenParent    `json:"parents,omitempty"`
	Listeners           []goldenListener  `json:"listeners,omitempty"`
	Ancestors           []goldenParent    `json:"ancestors,omitempty"`
}

// goldenParent is one status.parents entry; parentRef is printed as
// "group/Kind namespace/name", then " section S" and " port P" when set.
type goldenParent struct {
	ParentRef      string            `json:"parentRef"`
	ControllerName string            `json:"controllerName"`
	Conditions     []goldenCondition `json:"conditions"`
}

type goldenListener struct {
	Name           string            `json:"name"`
	SupportedKinds []string          `json:"supportedKinds"`
	AttachedRoutes int32             `json:"attachedRoutes"`
	Conditions     []goldenCondition `json:"conditions"`
}

func goldenConditions(cs []metav1.Condition) []goldenCondition {
	var out []goldenCondition
	for _, c := range cs {
		out = append(out, goldenCondition{c.Type, string(c.Status), c.Reason, c.Message, c.ObservedGeneration})
	}
	return out
}

func goldenParents(ps []gwv1.RouteParentStatus) []goldenParent {
	var out []goldenParent
	for _, p := range ps {
		r := p.ParentRef
		ref := fmt.Sprintf("%s/%s %s/%s", gderef(r.Group), gderef(r.Kind), gderef(r.Namespace), r.Name)
		if r.SectionName != nil {
			ref += " section " + string(*r.SectionName)
		}
		if r.Port != nil {
			ref += fmt.Sprintf(" port %d", *r.Port)
		}
		out = append(out, goldenParent{ref, string(p.ControllerName), goldenConditions(p.Conditions)})
	}
	return out
}

func goldenListeners(ls []gwv1.ListenerStatus) []goldenListener {
	var out []goldenListener
	for _, l := range ls {
		kinds := []string{}
		for _, k := range l.SupportedKinds {
			kinds = append(kinds, gderef(k.Group)+"/"+string(k.Kind))
		}
		out = append(out, goldenListener{string(l.Name), kinds, l.AttachedRoutes, goldenConditions(l.Conditions)})
	}
	return out
}

// gderef prints a pointer to a Gateway API string type, "<nil>" for nil.
func gderef[T ~string](p *T) string {
	if p == nil {
		return "<nil>"
	}
	return string(*p)
}

func goldenOutput(t *testing.T, out *Output, ages bool) []byte {
	t.Helper()
	if err := out.IR.Validate(); err != nil {
		t.Errorf("the IR does not validate: %v", err)
	}
	var g struct {
		Status   []goldenStatus `json:"status"`
		Accepted []string       `json:"accepted"`
		Ages     []string       `json:"firstAccepted,omitempty"`
		Rollout  any            `json:"rollout,omitempty"`
		IR       any            `json:"ir"`
	}
	for _, s := range out.Status {
		gs := goldenStatus{Object: s.ObjectRef.String(), File: s.File, Line: s.Line, ServingLastAccepted: s.ServingLastAccepted, Served: string(s.Served)}
		gs.Conditions = goldenConditions(s.Conditions)
		gs.Parents, gs.Listeners = goldenParents(s.Parents), goldenListeners(s.Listeners)
		for _, a := range s.Ancestors {
			gs.Ancestors = append(gs.Ancestors, goldenParents([]gwv1.RouteParentStatus{{ParentRef: a.AncestorRef, ControllerName: a.ControllerName, Conditions: a.Conditions}})...)
		}
		g.Status = append(g.Status, gs)
	}
	for k := range out.Accepted {
		g.Accepted = append(g.Accepted, k)
	}
	sort.Strings(g.Accepted)
	if ages {
		for k, s := range out.FirstAccepted {
			g.Ages = append(g.Ages, fmt.Sprintf("%s: %d %s", k, s.Seq, s.Revision))
		}
		sort.Strings(g.Ages)
	}
	if out.Rollout != nil {
		g.Rollout = out.Rollout.Spec
	}
	g.IR = prune(t, out.IR)
	data, err := yaml.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDeterministic builds every golden case with its objects in reverse
// order and expects the same IR and status.
func TestDeterministic(t *testing.T) {
	ins, _ := filepath.Glob("testdata/*.in.yaml")
	for _, in := range ins {
		input := readCase(t, in)
		a := Build(input)
		rev := input
		rev.Objects = append([]render.Object(nil), input.Objects...)
		for i, j := 0, len(rev.Objects)-1; i < j; i, j = i+1, j-1 {
			rev.Objects[i], rev.Objects[j] = rev.Objects[j], rev.Objects[i]
		}
		b := Build(rev)
		if !reflect.DeepEqual(a.IR, b.IR) {
			t.Errorf("%s: the IR depends on the order of the objects", in)
		}
		sa, sb := append([]status.Object(nil), a.Status...), append([]status.Object(nil), b.Status...)
		if !reflect.DeepEqual(sa, sb) {
			t.Errorf("%s: the status depends on the order of the objects", in)
		}
	}
}

// durationKeys are the IR fields of type time.Duration, printed as "10s".
var durationKeys = map[string]bool{
	"Request": true, "BackendRequest": true, "Idle": true, "ConnectTimeout": true,
	"IdleTimeout": true, "PerTryTimeout": true, "TTL": true, "SlowStartWindow": true, "BackoffBase": true, "BackoffMax": true,
	"Interval": true, "Timeout": true, "BaseEjectionTime": true, "MaxAge": true, "Per": true,
}

// prune turns v into generic JSON data without null, empty and zero values,
// so golden files show what is set.
func prune(t *testing.T, v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(data, &x); err != nil {
		t.Fatal(err)
	}
	return pruneValue(x)
}

func pruneValue(x any) any {
	switch v := x.(type) {
	case map[string]any:
		for k, e := range v {
			if f, ok := e.(float64); ok && durationKeys[k] && f != 0 {
				v[k] = time.Duration(f).String()
				continue
			}
			e = pruneValue(e)
			if e == nil {
				delete(v, k)
			} else {
				v[k] = e
			}
		}
		if len(v) == 0 {
			return nil
		}
		return v
	case []any:
		if len(v) == 0 {
			return nil
		}
		for i := range v {
			v[i] = pruneValue(v[i])
		}
		return v
	case string:
		if v == "" {
			return nil
		}
	case float64:
		if v == 0 {
			return nil
		}
	case bool:
		if !v {
			return nil
		}
	}
	return x
}
