package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/gitserver"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/upstream"
	"gitxds.dev/gitxds/testenv/xdsclient"
)

// binary builds gitxds once per test run.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gitxds")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// run runs the binary and returns stdout, stderr and the exit code.
func run(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func echoRepo(t *testing.T, files map[string]string) *gitserver.Repo {
	t.Helper()
	srv := gitserver.New(t, gitserver.Options{})
	r, err := srv.CreateRepo("gateways")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFiles(files); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Commit("initial"); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestServeBinary runs `gitxds serve` with the docs/architecture.md §7 flags against a
// repository in the docs/architecture.md §1 layout, and a real gRPC xDS client through it.
func TestServeBinary(t *testing.T) {
	bin := binary(t)
	a := upstream.StartT(t, "A")
	r := echoRepo(t, stack.EchoRepo(a.Addr(), stack.FreeAddr()))
	xdsAddr, adminAddr := stack.FreeAddr(), stack.FreeAddr()
	cmd := exec.Command(bin, "serve", "--repo", r.URL(), "--ref", "main", "--path", "overlays/dev",
		"--interval", "500ms", "--xds-address", xdsAddr, "--admin-address", adminAddr, "--state-dir", t.TempDir())
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never became ready; logs:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get("http://" + adminAddr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st status.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	head, _ := r.Head()
	if st.LastAppliedRevision != "main@sha1:"+head || st.Get(status.Ready).Status != "True" {
		t.Fatalf("status: applied %s ready %+v", st.LastAppliedRevision, st.Get(status.Ready))
	}

	c, err := xdsclient.New(xdsclient.Options{ServerAddr: xdsAddr, NodeID: "cli-client", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := c.Call(ctx, stack.EchoHost, nil); err != nil || got != "A" {
		t.Fatalf("call through gitxds serve: %q %v", got, err)
	}
	// What the node is served, from the admin API.
	resp, err = http.Get("http://" + adminAddr + "/snapshot?node=cli-client")
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		Revision  string            `json:"revision"`
		Listeners []json.RawMessage `json:"listeners"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if snap.Revision != "main@sha1:"+head || len(snap.Listeners) == 0 {
		t.Fatalf("snapshot of cli-client: revision %q, %d listeners", snap.Revision, len(snap.Listeners))
	}

	// SIGTERM: a clean exit.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v; logs:\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

func TestRenderAndValidateBinary(t *testing.T) {
	bin := binary(t)
	files := stack.EchoRepo("127.0.0.1:7001", "127.0.0.1:7002")
	r := echoRepo(t, files)
	dir := r.WorkDir()

	// render -o json is byte-for-byte deterministic, from the work tree and
	// from a ref, and has the five top-level fields.
	out1, errOut, code := run(t, bin, "render", "--repo", dir, "--path", "overlays/dev")
	if code != 0 {
		t.Fatalf("render exit %d: %s", code, errOut)
	}
	out2, _, _ := run(t, bin, "render", "--repo", dir, "--path", "overlays/dev")
	if out1 != out2 {
		t.Fatal("render -o json is not deterministic")
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out1), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"revision", "listeners", "routes", "clusters", "endpoints"} {
		if _, ok := doc[k]; !ok {
			t.Fatalf("render output has no %q", k)
		}
	}
	outRef, _, code := run(t, bin, "render", "--repo", r.URL(), "--ref", "main", "--path", "overlays/dev")
	if code != 0 || !strings.Contains(outRef, `"revision": "main@sha1:`) {
		t.Fatalf("render --ref main over http: exit %d\n%s", code, outRef)
	}

	// -o resources: the objects as a YAML stream, no gitxds annotations.
	res, _, code := run(t, bin, "render", "--repo", dir, "--path", "overlays/dev", "-o", "resources")
	if code != 0 || !strings.Contains(res, "kind: HTTPRoute") || strings.Contains(res, "config.kubernetes.io/origin") {
		t.Fatalf("render -o resources: exit %d\n%s", code, res)
	}

	// validate: 0 when clean.
	if out, _, code := run(t, bin, "validate", "--repo", dir, "--path", "overlays/dev"); code != 0 {
		t.Fatalf("validate clean repo: exit %d\n%s", code, out)
	}
	// validate: 1 with the file, the object and the reason of a rejected object.
	bad := strings.Replace(stack.EchoRoute("a"), "name: a}", "name: missing}", 1)
	if err := os.WriteFile(filepath.Join(dir, "teams/echo/routes.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := run(t, bin, "validate", "--repo", dir, "--path", "overlays/dev")
	// The route is accepted with a reference unresolved: served in part,
	// not listed as rejected, and still exit 1.
	if code != 1 || !strings.Contains(out, "served in part: teams/echo/routes.yaml: HTTPRoute echo/echo: BackendNotFound") ||
		strings.Contains(out, "rejected: ") {
		t.Fatalf("validate dangling ref: exit %d\n%s", code, out)
	}
	// validate: 1 naming the file when the YAML does not parse.
	if err := os.WriteFile(filepath.Join(dir, "teams/echo/routes.yaml"), []byte("kind: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = run(t, bin, "validate", "--repo", dir, "--path", "overlays/dev")
	if code != 1 || !strings.Contains(out+errOut, "teams/echo/routes.yaml: Kustomization teams/echo: BuildFailed") {
		t.Fatalf("validate malformed YAML: exit %d\n%s%s", code, out, errOut)
	}
	// Usage and I/O errors: 2.
	if _, _, code := run(t, bin, "render", "--repo", dir); code != 2 {
		t.Fatalf("render without --path: exit %d, want 2", code)
	}
	if _, _, code := run(t, bin, "render", "--repo", filepath.Join(dir, "nope"), "--ref", "main", "--path", "overlays/dev"); code != 2 {
		t.Fatalf("render of a missing repository: exit %d, want 2", code)
	}
}
