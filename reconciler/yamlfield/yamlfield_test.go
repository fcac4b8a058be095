package yamlfield

import (
	"reflect"
	"testing"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// Diagnose names the first field in document order that does not decode,
// the way the strict decoder reads YAML (1.1 scalars, case-insensitive
// field names), for Gateway API and gitxds kinds alike; nil where the
// decoder would accept the object.
func TestDiagnose(t *testing.T) {
	route := reflect.TypeFor[gwv1.HTTPRoute]()
	backend := reflect.TypeFor[v1alpha1.Backend]()
	rollout := reflect.TypeFor[v1alpha1.RolloutPolicy]()
	for _, c := range []struct {
		typ  reflect.Type
		y    string
		want string
	}{
		{route, "spec: {rules: [{backendRef: []}]}", `spec.rules[0].backendRef: unknown field (did you mean "backendRefs"?)`},
		{route, "spec: {rules: [{}, {matches: [{path: {tpye: Exact}}]}]}", `spec.rules[1].matches[0].path.tpye: unknown field (did you mean "type"?)`},
		{route, "spec: {rules: [{backendRefs: [{name: a, port: '80'}]}]}", `spec.rules[0].backendRefs[0].port: expected integer, got string "80"`},
		{route, "spec: {rules: [{backendRefs: [{name: a, port: 80.5}]}]}", `spec.rules[0].backendRefs[0].port: expected integer, got number 80.5`},
		{route, "spec: {hostnames: example.com}", `spec.hostnames: expected array, got string "example.com"`},
		{route, "spec: {parentRefs: [{name: yes}]}", `spec.parentRefs[0].name: expected string, got boolean yes (YAML reads an unquoted yes as a boolean: quote it)`},
		{route, "metadata: {labels: {app.kubernetes.io/name: 3}}", `metadata.labels["app.kubernetes.io/name"]: expected string, got integer 3`},
		{route, "spec: {rules: [{backendRefs: []}], rules: []}", `spec.rules: duplicate field`},
		{route, "spce: {}", `spce: unknown field (did you mean "spec"?)`},
		// metav1.Time decodes itself: its own words.
		{route, "metadata: {creationTimestamp: yesterday}", `metadata.creationTimestamp: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"`},
		{backend, "spec: {endpoints: [{ip: {address: 10.0.0.1, port: 80}}]}", ""},
		{backend, "spec: {endpoints: [{ip: {address: 10.0.0.1, port: 80.0}}]}", ""}, // 80 in JSON
		{backend, "spec: {Endpoints: []}", ""}, // encoding/json matches names ignoring case
		{backend, "spec: {endpoints: [{ip: {address: 10.0.0.1, port: ~}}]}", ""},
		{rollout, "spec: {stages: [{name: a, percent: '10'}]}", `spec.stages[0].percent: expected integer, got string "10"`},
	} {
		got := ""
		if e := Diagnose(c.typ, []byte(c.y)); e != nil {
			got = e.Error()
		}
		if got != c.want {
			t.Errorf("%s %s:\n got %s\nwant %s", c.typ.Name(), c.y, got, c.want)
		}
	}
}

// A suggestion only when the name is close: an edit or two, by length.
func TestClosest(t *testing.T) {
	names := []string{"backendRefs", "filters", "matches", "name", "timeouts"}
	for _, c := range []struct{ s, want string }{
		{"backendRef", "backendRefs"},
		{"BackendRefs", "backendRefs"},
		{"mathces", "matches"},
		{"nmae", "name"},
		{"timeout", "timeouts"},
		{"retry", ""},
		{"x", ""},
	} {
		got, _ := Closest(c.s, names)
		if got != c.want {
			t.Errorf("Closest(%q) = %q, want %q", c.s, got, c.want)
		}
	}
}
