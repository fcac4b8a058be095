package snapshot_test

import (
	"bytes"
	"testing"

	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/source"
)

// TestParseRenderJSON renders the example overlay, parses it back and
// renders again: the bytes are the same, API listeners and their route
// configurations are in the gRPC class, the rest in the Envoy class.
func TestParseRenderJSON(t *testing.T) {
	fsys, err := source.WorktreeFS("../..", source.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := pipeline.New(render.Options{}).Run(fsys, "overlays/dev", "dev@sha1:x", nil)
	if err != nil {
		t.Fatal(err)
	}
	js, err := snapshot.RenderJSON(b.Set)
	if err != nil {
		t.Fatal(err)
	}
	set, err := snapshot.ParseRenderJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	again, err := snapshot.RenderJSON(set)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, again) {
		t.Fatalf("round trip changed the output:\n%s\n---\n%s", js, again)
	}
	if set.Revision != "dev@sha1:x" {
		t.Errorf("revision %q", set.Revision)
	}
	g, e := set.Classes[snapshot.GRPC], set.Classes[snapshot.Envoy]
	for _, l := range g.Listeners {
		if l.GetApiListener() == nil {
			t.Errorf("grpc class has socket listener %s", l.GetName())
		}
	}
	for _, l := range e.Listeners {
		if l.GetApiListener() != nil {
			t.Errorf("envoy class has API listener %s", l.GetName())
		}
	}
	if len(g.Listeners) != len(b.Set.Classes[snapshot.GRPC].Listeners) || len(g.Routes) != len(b.Set.Classes[snapshot.GRPC].Routes) {
		t.Errorf("grpc class: %d listeners, %d routes; want %d, %d", len(g.Listeners), len(g.Routes),
			len(b.Set.Classes[snapshot.GRPC].Listeners), len(b.Set.Classes[snapshot.GRPC].Routes))
	}
	if _, err := snapshot.ParseRenderJSON([]byte(`{"revision":"x","listeners":[{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"c"}]}`)); err == nil {
		t.Error("a cluster among the listeners parsed")
	}
}
