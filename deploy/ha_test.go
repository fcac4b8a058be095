package deploy

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/testenv/kubeapi"
)

// No manifest asks for ReadWriteMany storage: the replicas of deploy/ha
// share no volume, and such storage classes are uncommon.
func TestNoReadWriteMany(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "ReadWriteMany") {
			t.Errorf("deploy/%s mentions ReadWriteMany", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// kubectl runs kubectl against s, failing t with its output.
func kubectl(t *testing.T, s *kubeapi.Server, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	out, err := exec.Command(bin, append([]string{"--kubeconfig", s.Kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The move from one replica (deploy/) to three (deploy/ha), as
// docs/operations.md ("High availability") walks through it, against a
// real API server: the single-replica install applied, deploy/ha goes over
// it — first with --dry-run=server, then for real — and the Deployment
// ends with three replicas on an emptyDir each (the claim's volume gone),
// the CRDs served; the claim left behind is deleted by hand; the way back
// to deploy/ passes a dry run. (deploy/ha used to patch the claim to
// ReadWriteMany, which the API server refuses over the single replica's
// ReadWriteOnce one: access modes are immutable.)
func TestMoveToHA(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl not on PATH")
	}
	s := kubeapi.Start(t)
	kubectl(t, s, "apply", "-k", ".")
	kubectl(t, s, "apply", "--dry-run=server", "--validate=strict", "-k", "ha")
	kubectl(t, s, "apply", "--validate=strict", "-k", "ha")
	kubectl(t, s, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/fleetrollouts.gitxds.dev", "crd/replicareports.gitxds.dev")

	var dep object
	if err := yaml.Unmarshal([]byte(kubectl(t, s, "-n", "gitxds-system", "get", "deployment", "gitxds", "-o", "yaml")), &dep); err != nil {
		t.Fatal(err)
	}
	if n, _ := at(dep, "spec", "replicas").(float64); n != 3 {
		t.Errorf("replicas %v, want 3", at(dep, "spec", "replicas"))
	}
	if str(dep, "spec", "strategy", "type") != "RollingUpdate" {
		t.Errorf("strategy %v", at(dep, "spec", "strategy"))
	}
	for _, v := range list(dep, "spec", "template", "spec", "volumes") {
		if str(v, "name") == "state" && (at(v, "emptyDir") == nil || at(v, "persistentVolumeClaim") != nil) {
			t.Errorf("state volume after the move: %v", v)
		}
	}
	// The rollout's objects can be written in the namespace.
	kubectl(t, s, "-n", "gitxds-system", "get", "fleetrollouts,replicareports")

	cs, err := s.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().PersistentVolumeClaims("gitxds-system").Get(ctx, "gitxds-state", metav1.GetOptions{}); err != nil {
		t.Fatalf("the claim of the single replica: %v (kubectl apply does not delete it; the guide does)", err)
	}
	kubectl(t, s, "-n", "gitxds-system", "delete", "pvc", "gitxds-state", "--wait=false")
	// Gone, or going: without a controller-manager here, nothing removes
	// the claim's protection finalizer.
	if pvc, err := cs.CoreV1().PersistentVolumeClaims("gitxds-system").Get(ctx, "gitxds-state", metav1.GetOptions{}); err == nil && pvc.DeletionTimestamp == nil {
		t.Error("the claim is not being deleted")
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}

	// And back to one replica (the Role keeps the rollout's objects).
	kubectl(t, s, "apply", "--dry-run=server", "--validate=strict", "-k", ".")

	// The optional RBAC of `serve --install-crds` is valid too.
	kubectl(t, s, "apply", "--dry-run=server", "--validate=strict", "-f", "ha/crd-installer-rbac.yaml")
}
