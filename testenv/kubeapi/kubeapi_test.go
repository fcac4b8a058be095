package kubeapi_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"gitxds.dev/gitxds/testenv/kubeapi"
)

func TestMain(m *testing.M) { kubeapi.Main(m) }

// The server stores what it is given: a namespace created through the
// rest.Config is read back through the kubeconfig.
func TestStartCreateNamespace(t *testing.T) {
	s := kubeapi.Start(t)
	rss, _ := s.RSS()
	t.Logf("kube-apiserver %s ready in %s, RSS %d MiB", kubeapi.Version, s.Ready.Round(10e6), rss>>20)

	cs, err := kubernetes.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeapi-test", Labels: map[string]string{"made-by": "kubeapi_test"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs2, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cs2.CoreV1().Namespaces().Get(ctx, "kubeapi-test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels["made-by"] != "kubeapi_test" {
		t.Fatalf("namespace read back with labels %v", ns.Labels)
	}
}

// A token the server does not know is refused (on the shared server).
func TestUnknownTokenRefused(t *testing.T) {
	s := kubeapi.Shared(t)
	cfg := *s.Config
	cfg.BearerToken = "not-the-token"
	cs, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if err == nil {
		t.Fatal("an unknown token listed namespaces")
	}
}
