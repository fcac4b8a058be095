package deploy

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"gitxds.dev/gitxds/testenv/kubeapi"
)

func TestMain(m *testing.M) { kubeapi.Main(m) }

// deploy/, deploy/ha and deploy/quickstart are accepted by a real Kubernetes API server:
// `kubectl apply --dry-run=server` runs every object through the server's
// defaulting, strict field validation and admission without storing it.
// The namespace is created for real first (admission refuses objects in a
// namespace that does not exist, and a dry-run Namespace is not stored).
func TestApplyDryRunServer(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	s := kubeapi.Shared(t)
	cs, err := kubernetes.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"gitxds-system", "hello"} { // hello: deploy/quickstart's backend
		if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: ns},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{".", "ha", "quickstart"} {
		t.Run(dir, func(t *testing.T) {
			want := map[string]bool{}
			for k, o := range buildDir(t, dir) {
				want[strings.ToLower(k)] = o != nil
			}
			cmd := exec.Command(kubectl, "--kubeconfig", s.Kubeconfig, "apply", "--dry-run=server", "--validate=strict", "-k", dir)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server -k %s: %v\n%s%s", dir, err, out, stderr.String())
			}
			// The server's warnings (deprecated APIs, ignored fields, ...)
			// fail the test; kubectl's own about the namespaces created
			// above without its annotation do not.
			for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
				if line != "" && !strings.Contains(line, "is missing the kubectl.kubernetes.io/last-applied-configuration annotation") {
					t.Errorf("kubectl: %s", line)
				}
			}
			// One line per object: "<kind>.<group>/<name> created (server dry run)".
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				// The namespaces this test created imperatively, above:
				// kubectl warns it will add its annotation to them.
				if strings.HasPrefix(line, "Warning: resource namespaces/") && strings.Contains(line, "last-applied-configuration annotation") {
					continue
				}
				ref, verb, _ := strings.Cut(line, " ")
				if !strings.HasSuffix(verb, "(server dry run)") {
					t.Errorf("unexpected output %q", line)
					continue
				}
				kind, name, _ := strings.Cut(ref, "/")
				kind, _, _ = strings.Cut(kind, ".")
				delete(want, kind+"/"+name)
			}
			if len(want) > 0 {
				t.Errorf("objects the server did not report: %v\n%s", want, out)
			}
		})
	}
}
