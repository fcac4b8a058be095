package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"gitxds.dev/gitxds/reconciler/kubestate"
	"gitxds.dev/gitxds/reconciler/leader"
	"gitxds.dev/gitxds/testenv/kubeapi"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/syncbuf"
)

// TestServeLeaderElectKubeconfig runs `gitxds serve --leader-elect
// --kubeconfig` as a process outside any pod, against a real API server:
// without the CRDs it exits saying so; with --install-crds it installs
// them, takes the Lease in the namespace named, with its identity, and
// claims epoch 1 on it.
// helper is `gitxds args` run by the test binary (TestServeHelperProcess),
// outside any pod.
func helper(args string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeHelperProcess$")
	cmd.Env = append(os.Environ(), "GITXDS_TEST_HELPER=1", "KUBERNETES_SERVICE_HOST=", "GITXDS_TEST_ARGS="+args)
	return cmd
}

func TestServeLeaderElectKubeconfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	srv := kubeapi.Start(t)
	cs, err := srv.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns := srv.Namespace(t, "gitxds")
	s, err := stack.Start(context.Background(), stack.Options{Interval: time.Hour})
	if err != nil {
		t.Skip("needs the git CLI:", err)
	}
	defer s.Close()
	s.StopDaemon()
	dir := t.TempDir()
	xdsAddr, admin := stack.FreeAddr(), stack.FreeAddr()
	args := fmt.Sprintf("serve --leader-elect --kubeconfig %s --leader-election-namespace %s --leader-election-identity gitxds-0 --repo %s --path %s --interval 1h --xds-address %s --admin-address %s --state-dir %s",
		srv.Kubeconfig, ns, s.Repo.URL(), s.Opts.Overlay, xdsAddr, admin, filepath.Join(dir, "state"))

	// Without the CRDs, serve says so and exits.
	out, err := helper(args).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "install the CRDs of deploy/crds") {
		t.Fatalf("serve --leader-elect without the CRDs: %v\n%s", err, out)
	}

	cmd := helper(args + " --install-crds")
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if !waitHTTP("http://"+admin+"/readyz", 60*time.Second) {
		t.Fatalf("not ready; stderr:\n%s", stderr.String())
	}
	ctx := context.Background()
	for _, name := range []string{"fleetrollouts.gitxds.dev", "replicareports.gitxds.dev"} {
		if _, err := dc.Resource(kubestate.CustomResourceDefinitions).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("CRD %s: %v", name, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "gitxds", metav1.GetOptions{})
		if err == nil && l.Spec.HolderIdentity != nil && l.Annotations[leader.EpochAnnotation] != "" {
			if want := leader.Identity("gitxds-0", admin); *l.Spec.HolderIdentity != want {
				t.Errorf("Lease holder %q, want %q", *l.Spec.HolderIdentity, want)
			}
			if e, err := strconv.Atoi(l.Annotations[leader.EpochAnnotation]); err != nil || e != 1 {
				t.Errorf("epoch %q, want 1", l.Annotations[leader.EpochAnnotation])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Lease with an epoch in %s: %v %v; stderr:\n%s", ns, l, err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
