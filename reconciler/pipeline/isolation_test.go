package pipeline

import (
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/reconciler/status"
)

func exampleFS(t testing.TB) filesys.FileSystem {
	t.Helper()
	fsys, err := source.WorktreeFS("../..", source.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func edit(t testing.TB, fsys filesys.FileSystem, p string, f func(string) string) {
	t.Helper()
	data, err := fsys.ReadFile("/" + p)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile("/"+p, []byte(f(string(data)))); err != nil {
		t.Fatal(err)
	}
}

// TestTeamIsolation: a commit that breaks one team's directory and changes
// another's serves the other team's change, keeps the broken team's last
// accepted objects serving, and names the team, the file and the reason.
func TestTeamIsolation(t *testing.T) {
	p := New(render.Options{Cache: render.NewCache(0)})
	fsys := exampleFS(t)
	b1, err := p.Run(fsys, "overlays/dev", "r1", nil)
	if err != nil {
		t.Fatal(err)
	}

	// r2: search's file is malformed; nothing else changes.
	edit(t, fsys, "repo-layout/teams/search/search.yaml", func(s string) string { return s + "\n  - [unclosed\n" })
	b2, err := p.Run(fsys, "overlays/dev", "r2", b1.Model.Memory())
	if err != nil {
		t.Fatalf("one team's broken file failed the revision: %v", err)
	}
	if b2.Set.Hash() != b1.Set.Hash() {
		t.Errorf("served config changed although only the broken team's files changed")
	}
	failed := teamStatus(t, b2, "repo-layout/teams/search")
	if failed.File != "repo-layout/teams/search/search.yaml" || !strings.Contains(failed.Conditions[0].Message, "malformed YAML") ||
		!strings.Contains(failed.Conditions[0].Message, "keeps serving") {
		t.Errorf("team status: %s", status.Line(failed))
	}
	for _, o := range b2.Model.Status {
		if strings.HasPrefix(o.File, "repo-layout/teams/search/") && o.Kind != KindTeamDirectory && o.ServingLastAccepted == "" {
			t.Errorf("%s: held object does not say it serves its last accepted version", o.ObjectRef)
		}
	}

	// r3: search still broken, shop moves its cart backend.
	edit(t, fsys, "repo-layout/teams/shop/shop.yaml", func(s string) string { return strings.Replace(s, "port: 19201", "port: 19299", 1) })
	b3, err := p.Run(fsys, "overlays/dev", "r3", b2.Model.Memory())
	if err != nil {
		t.Fatal(err)
	}
	if b3.Set.Hash() == b2.Set.Hash() {
		t.Errorf("shop's change is not served")
	}
	cart := b3.Model.Accepted["Backend shop/cart"]
	if !strings.Contains(string(cart.YAML), "19299") {
		t.Errorf("shop's new Backend is not the accepted one:\n%s", cart.YAML)
	}
	for k, o := range b1.Model.Accepted {
		if strings.HasPrefix(o.File, "repo-layout/teams/search/") && string(b3.Model.Accepted[k].YAML) != string(o.YAML) {
			t.Errorf("%s: search's last accepted version is not kept", k)
		}
	}

	// Offline (validate): no last accepted; the team is reported, the rest builds.
	b4, err := New(render.Options{}).Run(fsys, "overlays/dev", "r3", nil)
	if err != nil {
		t.Fatal(err)
	}
	teamStatus(t, b4, "repo-layout/teams/search")
	for k := range b4.Model.Accepted {
		if strings.HasPrefix(k, "HTTPRoute search/") {
			t.Errorf("%s served with no accepted version", k)
		}
	}
}

// TestTeamIsolationConfinement: a team that reaches into another's
// directory is left out; the victim's objects are its own.
func TestTeamIsolationConfinement(t *testing.T) {
	fsys := exampleFS(t)
	if err := fsys.WriteFile("/repo-layout/teams/search/steal/kustomization.yaml", []byte("namePrefix: a-\nresources:\n- ../../payments\n")); err != nil {
		t.Fatal(err)
	}
	edit(t, fsys, "repo-layout/teams/search/kustomization.yaml", func(s string) string { return s + "- steal\n" })
	b, err := New(render.Options{}).Run(fsys, "overlays/dev", "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	st := teamStatus(t, b, "repo-layout/teams/search")
	if want := `resources "../../payments" leaves repo-layout/teams/search/`; !strings.Contains(st.Conditions[0].Message, want) || st.File != "repo-layout/teams/search/steal/kustomization.yaml" {
		t.Errorf("got %s\nwant file repo-layout/teams/search/steal/kustomization.yaml and %q", status.Line(st), want)
	}
	for k, o := range b.Model.Accepted {
		if strings.HasPrefix(k, "HTTPRoute payments/a-") || (strings.Contains(k, "payments/") && !strings.HasPrefix(o.File, "repo-layout/teams/payments/")) {
			t.Errorf("%s (%s) served", k, o.File)
		}
	}
	if _, ok := b.Model.Accepted[model.Key(render.Object{Kind: "HTTPRoute", Namespace: "payments", Name: "payments"})]; !ok {
		t.Errorf("payments' own route is not served")
	}
}

func teamStatus(t *testing.T, b *Result, dir string) status.Object {
	t.Helper()
	for _, o := range b.Model.Status {
		if o.Kind == KindTeamDirectory && o.Name == dir {
			if o.Accepted() {
				t.Errorf("%s is reported accepted", dir)
			}
			return o
		}
	}
	t.Fatalf("no status for team directory %s; rejected: %v", dir, b.Rejected())
	return status.Object{}
}

// TestPatchedByOverlay: a team object the overlay patches says so in its
// status; the team's other objects do not.
func TestPatchedByOverlay(t *testing.T) {
	fsys := exampleFS(t)
	edit(t, fsys, "overlays/dev/kustomization.yaml", func(s string) string {
		return s + "- target: {kind: Backend, name: cart, namespace: shop}\n  patch: |-\n    - op: replace\n      path: /spec/endpoints/0/ip/port\n      value: 19299\n"
	})
	b, err := New(render.Options{Cache: render.NewCache(0)}).Run(fsys, "overlays/dev", "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	var patched []string
	for _, o := range b.Model.Status {
		if o.PatchedByOverlay != "" {
			patched = append(patched, o.ObjectRef.String()+" by "+o.PatchedByOverlay)
		}
	}
	if got := strings.Join(patched, "; "); got != "Backend shop/cart by overlays/dev/kustomization.yaml" {
		t.Errorf("patched: %q", got)
	}
}
