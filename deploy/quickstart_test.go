package deploy

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/reconciler/status"
)

// The quickstart holds together: deploy/quickstart points gitxds at
// overlays/quickstart, every object of that overlay is accepted, and its
// hello Backend is the hello Service deploy/quickstart runs.
func TestQuickstart(t *testing.T) {
	objs := buildDir(t, "quickstart")
	cfg := objs["ConfigMap/gitxds-config"]
	overlay := str(cfg, "data", "GITXDS_PATH")
	fsys, err := source.WorktreeFS("..", source.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := pipeline.New(render.Options{}).Run(fsys, overlay, "quickstart", nil)
	if err != nil {
		t.Fatalf("%s: %v", overlay, err)
	}
	for _, o := range b.Rejected() {
		t.Errorf("%s: rejected: %s", overlay, status.Line(o))
	}
	svc := objs["Service/hello"]
	port, _ := at(svc, "spec", "ports", 0, "port").(float64)
	want := fmt.Sprintf("%s.%s.svc.cluster.local:%d", str(svc, "metadata", "name"), str(svc, "metadata", "namespace"), int(port))
	found := false
	for _, o := range b.Model.Status {
		found = found || (o.Kind == v1alpha1.KindBackend && o.Namespace == "hello" && o.Name == "hello")
	}
	if !found {
		t.Fatalf("%s has no Backend hello/hello", overlay)
	}
	ep := backendEndpoint(t, "../repo-layout/teams/hello/hello.yaml")
	if ep != want {
		t.Errorf("Backend hello/hello points at %s; the quickstart's Service is %s", ep, want)
	}
}

// backendEndpoint is "host:port" of the first endpoint of the Backend in
// file.
func backendEndpoint(t *testing.T, file string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var be v1alpha1.Backend
		if err := yaml.Unmarshal([]byte(doc), &be); err != nil {
			t.Fatal(err)
		}
		if be.Kind != v1alpha1.KindBackend || len(be.Spec.Endpoints) == 0 {
			continue
		}
		if f := be.Spec.Endpoints[0].FQDN; f != nil {
			return fmt.Sprintf("%s:%d", f.Hostname, f.Port)
		}
	}
	t.Fatalf("%s: no Backend with an fqdn endpoint", file)
	return ""
}
