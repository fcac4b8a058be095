package kubestate

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/status"
)

func fullState() rollout.FleetState {
	bake := time.Date(2026, 12, 7, 3, 4, 5, 0, time.UTC)
	return rollout.FleetState{Epoch: 1 << 40, Revision: "r2", Hash: "h2", LastGoodRevision: "r1", LastGoodHash: "h1",
		Stages: []rollout.StageSpec{{Name: "canary", Selector: "rollout-group=canary", Percent: -1, MinNodes: 1}, {Name: "half", Percent: 50}},
		Stage:  1, StageName: "half", Phase: status.RolloutPaused, FastPath: "", BakeUntil: &bake,
		StartedAt: bake.Add(-time.Minute), Failed: []status.FailedRevision{{Revision: "r0", Reason: "Nacked"}},
		Reason: "Baking", Message: "baking 30s"}
}

func fullReport() rollout.ReplicaReport {
	return rollout.ReplicaReport{Replica: "gitxds-0", Epoch: 3, Revision: "r2", Hash: "h2", Stage: 1, RenderedHash: "h2",
		RenderError: "x", Connected: 100, InStage: 50, Moved: 50, Acked: 49, Pending: 1, PendingNodes: []string{"n1"},
		NACKs: []rollout.NodeNACK{{Node: "n2", TypeURL: "t", Version: "h2", Error: "e"}}, ServedHash: "h1",
		Heartbeat: time.Date(2026, 12, 7, 3, 4, 5, 0, time.UTC)}
}

// The Go structs survive the round trip through an object's .status, and
// the status map is one an unstructured object can hold (integers as
// int64: DeepCopy panics on Go ints).
func TestStatusRoundTrip(t *testing.T) {
	for _, v := range []any{fullState(), fullReport()} {
		m, err := toStatus(v)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: map[string]any{"status": m}}
		u = u.DeepCopy()
		if e, _ := m["epoch"].(int64); e == 0 {
			t.Errorf("epoch is %T %v, want a non-zero int64", m["epoch"], m["epoch"])
		}
		got := reflect.New(reflect.TypeOf(v))
		if err := fromStatus(u, got.Interface()); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Elem().Interface(), v) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got.Elem().Interface(), v)
		}
	}
}

// A field a newer gitxds added is ignored, not an error.
func TestStatusUnknownField(t *testing.T) {
	m, _ := toStatus(fullReport())
	m["addedLater"] = map[string]any{"x": int64(1)}
	var r rollout.ReplicaReport
	if err := fromStatus(&unstructured.Unstructured{Object: map[string]any{"status": m}}, &r); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, fullReport()) {
		t.Errorf("got %+v", r)
	}
}

// Every printer column and typed status field of the embedded CRDs names a
// field the Go struct writes: renaming a JSON field without the CRD would
// leave a column empty.
func TestCRDColumnsMatchStructs(t *testing.T) {
	objs, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]any{FleetRolloutKind: fullState(), ReplicaReportKind: fullReport()}
	if len(objs) != len(kinds) {
		t.Fatalf("%d CRDs, want %d", len(objs), len(kinds))
	}
	for _, crd := range objs {
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		v, ok := kinds[kind]
		if !ok {
			t.Fatalf("CRD of kind %q", kind)
		}
		st, _ := toStatus(v)
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		if len(versions) != 1 {
			t.Fatalf("%s: %d versions", kind, len(versions))
		}
		ver := versions[0].(map[string]any)
		if ver["name"] != Version {
			t.Errorf("%s: version %v, want %s", kind, ver["name"], Version)
		}
		cols, _, _ := unstructured.NestedSlice(ver, "additionalPrinterColumns")
		for _, c := range cols {
			path := c.(map[string]any)["jsonPath"].(string)
			if path == ".metadata.creationTimestamp" {
				continue
			}
			field, ok := strings.CutPrefix(path, ".status.")
			if _, has := st[field]; !ok || !has {
				t.Errorf("%s: column %s names no field of the status written", kind, path)
			}
		}
		props, _, _ := unstructured.NestedMap(ver, "schema", "openAPIV3Schema", "properties", "status", "properties")
		for field := range props {
			if _, has := st[field]; !has {
				t.Errorf("%s: typed status field %s is not written", kind, field)
			}
		}
	}
}

// Without Start, reads go to the API (here a fake one): a report written
// is read back, named after its object.
func TestReportsWithoutStart(t *testing.T) {
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		FleetRollouts: "FleetRolloutList", ReplicaReports: "ReplicaReportList"})
	b, err := New(Options{Client: dc, Namespace: "ns", Name: "gitxds", Replica: "gitxds-0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.PutReport(ctx, fullReport()); err != nil {
		t.Fatal(err)
	}
	got, err := b.Reports(ctx)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], fullReport()) {
		t.Fatalf("Reports: %+v, %v", got, err)
	}
	if _, err := New(Options{Client: dc, Namespace: "ns", Name: "gitxds", Replica: "Not_A_Name"}); err == nil {
		t.Error("a replica name that is no object name was accepted")
	}
}

// Check says what is missing: the CRDs (the API server does not serve the
// resource) or the permission to read them.
func TestCheck(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{apierrors.NewNotFound(schema.GroupResource{Group: Group, Resource: "fleetrollouts"}, ""), "install the CRDs of deploy/crds"},
		{apierrors.NewForbidden(schema.GroupResource{Group: Group, Resource: "fleetrollouts"}, "", errors.New("RBAC")), "may not list fleetrollouts"},
		{nil, ""},
	} {
		dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
			FleetRollouts: "FleetRolloutList", ReplicaReports: "ReplicaReportList"})
		if c.err != nil {
			dc.PrependReactor("list", "fleetrollouts", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, c.err })
		}
		b, err := New(Options{Client: dc, Namespace: "ns", Name: "gitxds"})
		if err != nil {
			t.Fatal(err)
		}
		err = b.Check(context.Background())
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Check with %v: %v, want %q", c.err, err, c.want)
		}
	}
}
