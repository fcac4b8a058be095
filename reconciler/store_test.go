package reconciler

import (
	"reflect"
	"testing"

	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/render"
)

// The age of accepted objects survives a restart: conflicts after a
// restart still go to the route accepted first.
func TestStoreKeepsFirstAccepted(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	obj := render.Object{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute", Namespace: "a", Name: "x", File: "teams/a/x.yaml", YAML: []byte("kind: HTTPRoute\n")}
	p := &persisted{}
	p.remember(&model.Output{
		Accepted:      map[string]render.Object{model.Key(obj): obj},
		FirstAccepted: map[string]model.Since{model.Key(obj): {Revision: "main@sha1:abc", Seq: 7}},
	})
	if err := s.Save(p); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.memory(), p.memory()) {
		t.Errorf("after a restart the model's memory is %+v, want %+v", got.memory(), p.memory())
	}
}
