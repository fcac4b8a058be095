package snapshot

import (
	"bytes"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// groupSet is testSet's default group plus group "internal", whose Envoy
// class has one listener of its own.
func groupSet(t *testing.T) *Set {
	t.Helper()
	def := testSet(t)
	internal := &Resources{Listeners: []*listenerv3.Listener{{Name: "port-80"}}}
	return NewGroups(def.Revision, map[Group]map[Class]*Resources{
		DefaultGroup: def.Classes,
		"internal":   {Envoy: internal, GRPC: {}},
	})
}

func TestGroupsRoundTrip(t *testing.T) {
	set := groupSet(t)
	data, err := Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"groups"`) {
		t.Fatalf("the file has no groups:\n%s", data)
	}
	back, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Hash() != set.Hash() {
		t.Errorf("hash after the round trip %s, want %s", back.Hash(), set.Hash())
	}
	if got := back.GroupNames(); len(got) != 1 || got[0] != "internal" {
		t.Fatalf("groups after the round trip: %v", got)
	}
	in := back.In("internal")
	if l := in.Of(Envoy).Listeners; len(l) != 1 || l[0].GetName() != "port-80" {
		t.Errorf("group internal listeners after the round trip: %v", l)
	}
	if v, w := in.Version(Envoy, resource.ListenerType), set.In("internal").Version(Envoy, resource.ListenerType); v != w || v == back.Version(Envoy, resource.ListenerType) {
		t.Errorf("group version %s, want %s, distinct from the default group's", v, w)
	}
	again, err := Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Error("Marshal after Unmarshal differs")
	}
}

// A Set without groups is written, hashed and rendered as before groups
// existed, so older state files load and keep their hash.
func TestNoGroupsUnchanged(t *testing.T) {
	set := testSet(t)
	data, err := Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), `"groups"`) {
		t.Errorf("a Set without groups writes groups:\n%s", data)
	}
	r, err := RenderJSON(set)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(r), `"groups"`) {
		t.Errorf("a Set without groups renders groups")
	}
	withEmpty := NewGroups(set.Revision, map[Group]map[Class]*Resources{DefaultGroup: set.Classes})
	if withEmpty.Hash() != set.Hash() || withEmpty.Groups != nil {
		t.Errorf("NewGroups with the default group alone differs from New")
	}
	if set.Hash() == groupSet(t).Hash() {
		t.Error("a group does not change the Set's hash")
	}
}

func TestInUnknownGroupServesNothing(t *testing.T) {
	set := groupSet(t)
	if set.In(DefaultGroup) != set {
		t.Error("In(DefaultGroup) is not the Set")
	}
	other := set.In("other")
	if other.Of(Envoy) != nil || other.Revision != set.Revision {
		t.Errorf("a group the Set does not have gets %v", other.Of(Envoy))
	}
	r, err := RenderJSON(set)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(r), `"internal"`) {
		t.Errorf("render -o xds has no group internal:\n%s", r)
	}
}

// What `gitxds render -o json` prints of a Set with groups parses back
// with its groups.
func TestParseRenderJSONGroups(t *testing.T) {
	r, err := RenderJSON(groupSet(t))
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseRenderJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	if l := back.In("internal").Of(Envoy).Listeners; len(l) != 1 || l[0].GetName() != "port-80" {
		t.Errorf("group internal parsed back: %v", l)
	}
	again, err := RenderJSON(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, r) {
		t.Errorf("rendered again differs:\n%s\nwant\n%s", again, r)
	}
}
