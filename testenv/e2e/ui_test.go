package e2e

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/stack"
)

// chromium finds Debian's headless Chromium. With GITXDS_REQUIRE_CHROMIUM
// set (CI), a missing browser fails the test instead of skipping it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM_BIN"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if os.Getenv("GITXDS_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium is not installed (apt-get install chromium) and GITXDS_REQUIRE_CHROMIUM is set")
	}
	t.Skip("chromium not installed")
	return ""
}

// headless runs Chromium on url with the flags this machine needs (no
// network but loopback) plus extra, and returns its standard output.
func headless(t *testing.T, bin, url string, extra ...string) []byte {
	t.Helper()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,1400"}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", extra, err)
	}
	return out
}

// TestUIInChromium drives a canary rollout and looks at GET /ui in headless
// Chromium as it moves: while the canary bakes, the page shows the stage
// baking with its node ACKed and the next stage pending; its script swaps
// in fresh content; once the rollout is done, the page says Succeeded. A
// screenshot is taken at each moment.
func TestUIInChromium(t *testing.T) {
	bin := chromium(t)
	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr()}
	s, err := stack.Start(context.Background(), stack.Options{Files: rolloutRepo(ups, "a", policy("10s", "15s", "")), Upstreams: ups, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	must[status.Status](t)(s.WaitApplied(20*time.Second, "main@sha1:"+must[string](t)(s.Repo.Head())))
	canary := must[*clientT](t)(s.Client("canary-1", map[string]string{"rollout-group": "canary"}))
	defer canary.Close()
	stable := must[*clientT](t)(s.Client("stable-1", nil))
	defer stable.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, c := range []*clientT{canary, stable} {
		if _, err := c.Call(ctx, stack.EchoHost, nil); err != nil {
			t.Fatal(err)
		}
	}
	url := "http://" + s.Daemon.AdminAddr + "/ui"
	dir := t.TempDir()

	rev := must[string](t)(s.Commit("to b", map[string]*string{"teams/echo/routes.yaml": ptr(routeTo("b"))}))
	must[status.Status](t)(s.WaitStatus(20*time.Second, "canary baking", func(st status.Status) bool {
		return st.Rollout != nil && st.Rollout.Revision == rev && len(st.Rollout.Stages) > 0 && st.Rollout.Stages[0].Phase == "Baking"
	}))
	dom := string(headless(t, bin, url, "--dump-dom"))
	for _, want := range []string{`data-phase="Progressing"`, `data-stage="canary" data-phase="Baking"`, "1 of 1", "s left)", "0 of 0",
		`data-stage="all" data-phase="Pending"`, "canary-1", "rollout-group=canary", strings.TrimPrefix(rev, "main@sha1:")} {
		if !strings.Contains(dom, want) {
			t.Errorf("while baking, the page lacks %q", want)
		}
	}
	// The script refreshes the live part: after 2.5 s of (virtual) time the
	// body carries the time of its last swap.
	if dom := string(headless(t, bin, url, "--dump-dom", "--virtual-time-budget=2500")); !strings.Contains(dom, "data-updated=") {
		t.Errorf("the page's script did not swap in fresh content")
	}
	shot1 := filepath.Join(dir, "baking.png")
	headless(t, bin, url, "--screenshot="+shot1)

	must[status.Status](t)(s.WaitApplied(30*time.Second, rev))
	dom = string(headless(t, bin, url, "--dump-dom"))
	for _, want := range []string{`data-phase="Succeeded"`, `data-stage="canary" data-phase="Passed"`, `data-stage="all" data-phase="Passed"`, "1 of 1"} {
		if !strings.Contains(dom, want) {
			t.Errorf("after the rollout, the page lacks %q", want)
		}
	}
	shot2 := filepath.Join(dir, "done.png")
	headless(t, bin, url, "--screenshot="+shot2)
	a, b := readPNG(t, shot1), readPNG(t, shot2)
	if bytes.Equal(a, b) {
		t.Errorf("the screenshots before and after the rollout are the same")
	}
	if out := os.Getenv("GITXDS_UI_SCREENSHOTS"); out != "" {
		os.WriteFile(filepath.Join(out, "ui-baking.png"), a, 0o644)
		os.WriteFile(filepath.Join(out, "ui-done.png"), b, 0o644)
	}
}

func readPNG(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if r := img.Bounds(); r.Dx() < 800 || r.Dy() < 600 {
		t.Errorf("%s: %v, too small", p, r)
	}
	return data
}
