package apiref

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitxds.dev/gitxds/testenv/golden"
)

const (
	apiDir    = "../v1alpha1"
	source    = "reconciler/model/apis/v1alpha1"
	reference = "../../../../docs/reference.md"
)

// TestReferenceUpToDate: docs/reference.md is what the Go types give (a
// golden file). After changing a type or its comments, regenerate it with
// go test ./reconciler/model/apis/apiref -update.
func TestReferenceUpToDate(t *testing.T) {
	p, err := Load(apiDir)
	if err != nil {
		t.Fatal(err)
	}
	golden.File(t, reference, Markdown(p, source))
}

// TestEveryFieldDocumented: every field of every kind has a description,
// its own comment or its type's.
func TestEveryFieldDocumented(t *testing.T) {
	p, err := Load(apiDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Kinds) == 0 {
		t.Fatal("no kind found")
	}
	for _, k := range p.Kinds {
		if k.Doc == "" {
			t.Errorf("%s has no doc comment", k.Name)
		}
		for _, f := range k.Fields {
			if f.Doc == "" {
				t.Errorf("%s %s has no doc comment (on the field or on its type)", k.Name, f.Path)
			}
		}
	}
}

// TestKnownKinds: the kinds of the package are found, with fields of every
// depth and the facts the comments state.
func TestKnownKinds(t *testing.T) {
	p, err := Load(apiDir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Group != "gitxds.dev" || p.Version != "v1alpha1" {
		t.Errorf("group/version = %s/%s", p.Group, p.Version)
	}
	byKind := map[string]map[string]Field{}
	for _, k := range p.Kinds {
		byKind[k.Name] = map[string]Field{}
		for _, f := range k.Fields {
			byKind[k.Name][f.Path] = f
		}
	}
	for _, want := range []string{"Backend", "BackendAddressPolicy", "BackendTrafficPolicy", "RolloutPolicy"} {
		if byKind[want] == nil {
			t.Errorf("kind %s not found", want)
		}
	}
	for _, not := range []string{"BackendSpec", "Retry", "IPEndpoint"} {
		if byKind[not] != nil {
			t.Errorf("%s is not a kind", not)
		}
	}
	check := func(kind, path string, want Field) {
		t.Helper()
		got, ok := byKind[kind][path]
		if !ok {
			t.Errorf("%s: no field %s", kind, path)
			return
		}
		want.Path, want.Doc = path, got.Doc
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", kind, path, diff)
		}
	}
	check("Backend", "spec.endpoints[].ip.address", Field{Type: "string", Required: true})
	check("BackendTrafficPolicy", "spec.retry.perRetry.backOff.baseInterval", Field{Type: "duration", Default: "Envoy's, 25ms", Validation: "positive"})
	check("BackendTrafficPolicy", "spec.rateLimit.type", Field{Type: "string", Required: true, Validation: "one of `Local`, `Global`"})
	check("RolloutPolicy", "spec.stages[].nodeSelector", Field{Type: "label selector (`matchLabels`, `matchExpressions`)", Validation: "nodeSelector or percent, or both"})
	check("RolloutPolicy", "spec.ackTimeout", Field{Type: "duration", Default: "10s", Validation: "positive"})
}

// TestNewKindPickedUp: a kind added to the package later appears in the
// reference without a change to the generator: its inline and embedded
// structs, enums, maps, markers and Default/Validation lines are read.
func TestNewKindPickedUp(t *testing.T) {
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(apiDir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const widget = `package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Widget is a kind added later.
type Widget struct {
	metav1.TypeMeta   ` + "`json:\",inline\"`" + `
	metav1.ObjectMeta ` + "`json:\"metadata,omitempty\"`" + `
	Spec              WidgetSpec ` + "`json:\"spec\"`" + `
}

// WidgetSpec says what a widget does.
type WidgetSpec struct {
	WidgetTarget ` + "`json:\",inline\"`" + `
	Embedded     ` + "`json:\"embedded,omitempty\"`" + `
	// Mode of the widget.
	// Default: Fast.
	Mode WidgetMode ` + "`json:\"mode,omitempty\"`" + `
	// Labels of the widget.
	// +optional
	Labels map[string]string ` + "`json:\"labels\"`" + `
	// Parts of the widget.
	// +kubebuilder:validation:MaxItems=4
	Parts []struct {
		// Size of a part.
		Size int64 ` + "`json:\"size\"`" + `
	} ` + "`json:\"parts,omitempty\"`" + `
	Hidden string ` + "`json:\"-\"`" + `
}

// WidgetTarget is inlined.
type WidgetTarget struct {
	// Name of the target.
	Name string ` + "`json:\"name\"`" + `
	// Port of the target.
	// Default: 80.
	// Validation: 1..65535,
	// and not 22.
	// +optional
	Port int32 ` + "`json:\"port\"`" + `
}

// Embedded is embedded with a name.
type Embedded struct {
	// On or off.
	On bool ` + "`json:\"on\"`" + `
}

// WidgetMode is how fast.
type WidgetMode string

// Modes.
const (
	WidgetFast WidgetMode = "Fast"
	WidgetSlow WidgetMode = "Slow"
)
`
	if err := os.WriteFile(filepath.Join(dir, "widget_types.go"), []byte(widget), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var w *Kind
	for i := range p.Kinds {
		if p.Kinds[i].Name == "Widget" {
			w = &p.Kinds[i]
		}
	}
	if w == nil {
		t.Fatal("kind Widget not found")
	}
	want := []Field{
		{Path: "spec", Type: "object", Required: true, Doc: "WidgetSpec says what a widget does."},
		{Path: "spec.name", Type: "string", Required: true, Doc: "Name of the target."},
		{Path: "spec.port", Type: "integer", Default: "80", Validation: "1..65535, and not 22", Doc: "Port of the target."},
		{Path: "spec.embedded", Type: "object", Doc: "Embedded is embedded with a name."},
		{Path: "spec.embedded.on", Type: "boolean", Required: true, Doc: "On or off."},
		{Path: "spec.mode", Type: "string", Default: "Fast", Validation: "one of `Fast`, `Slow`", Doc: "Mode of the widget."},
		{Path: "spec.labels", Type: "map[string]string", Doc: "Labels of the widget."},
		{Path: "spec.parts", Type: "[]object", Validation: "MaxItems 4", Doc: "Parts of the widget."},
		{Path: "spec.parts[].size", Type: "integer", Required: true, Doc: "Size of a part."},
	}
	if diff := cmp.Diff(want, w.Fields); diff != "" {
		t.Errorf("Widget fields (-want +got):\n%s", diff)
	}
	md := string(Markdown(p, source))
	for _, s := range []string{"- [Widget](#widget)", "## Widget", "| `spec.parts[].size` | integer | yes |"} {
		if !strings.Contains(md, s) {
			t.Errorf("the reference lacks %q", s)
		}
	}
}
