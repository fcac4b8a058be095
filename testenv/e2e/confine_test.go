package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/xdsclient"
)

type clientT = xdsclient.Client

const shopHost = "shop.example.com"

// twoTeams is the echo repository with a second team, shop, whose host is
// answered by backend A.
func twoTeams(a, b string) map[string]string {
	files := repo(a, b)
	files["platform/namespaces.yaml"] += "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
	files["teams/shop/kustomization.yaml"] = "namespace: shop\nresources: [shop.yaml]\n"
	files["teams/shop/shop.yaml"] = strings.NewReplacer(
		"metadata: {name: a}", "metadata: {name: shop-a}",
		"name: a}]", "name: shop-a}]",
		"metadata: {name: echo}", "metadata: {name: shop}",
		stack.EchoHost, shopHost,
	).Replace(strings.SplitN(files["teams/echo/backends.yaml"], "---", 2)[0] + "---\n" + routeTo("a"))
	files["overlays/dev/kustomization.yaml"] = "resources: [../../platform, ../../teams/echo, ../../teams/shop]\n"
	return files
}

// billionLaughs is a resource file of a few hundred bytes whose aliases
// expand to about 10⁹ nodes.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString("apiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata: {name: lol}\nspec:\n  x:\n    a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		fmt.Fprintf(&b, "    %s: &%s [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n", n, n, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = n
	}
	return b.String()
}

// TestConfinementAttacks pushes, as the shop team, each attack of the
// confinement issue, in the same commit as a legitimate change of the echo
// team. Each attack is refused with its file named, nothing of it is
// served, shop keeps its last accepted config, and echo's change is served.
// Then the daemon restarts on the last attack's commit and serves.
func TestConfinementAttacks(t *testing.T) {
	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr()}
	s, err := stack.Start(context.Background(), stack.Options{Files: twoTeams(ups["A"], ups["B"]), Upstreams: ups, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	head := must[string](t)(s.Repo.Head())
	must[status.Status](t)(s.WaitApplied(20*time.Second, "main@sha1:"+head))
	c := must[*clientT](t)(s.Client("client-1", nil))
	defer c.Close()
	if got := must[string](t)(c.Call(ctx, shopHost, nil)); got != "A" {
		t.Fatalf("shop answered by %q, want A", got)
	}

	steal := "namePrefix: a-\nresources:\n- ../../echo\npatches:\n- target: {kind: HTTPRoute}\n  patch: |-\n    - op: replace\n      path: /spec/rules/0/backendRefs/0/name\n      value: b\n"
	attacks := []struct {
		name  string
		files map[string]*string
		file  string // the file the refusal names
		want  string
	}{
		{"another team's directory", map[string]*string{
			"teams/shop/kustomization.yaml":       ptr("namespace: shop\nresources: [shop.yaml, steal]\n"),
			"teams/shop/steal/kustomization.yaml": ptr(steal)},
			"teams/shop/steal/kustomization.yaml", `resources "../../echo" leaves teams/shop/`},
		{"the platform's directory", map[string]*string{
			"teams/shop/kustomization.yaml":       ptr("namespace: shop\nresources: [shop.yaml, steal]\n"),
			"teams/shop/steal/kustomization.yaml": ptr("namePrefix: a-\nresources:\n- ../../../platform\n")},
			"teams/shop/steal/kustomization.yaml", `resources "../../../platform" leaves teams/shop/`},
		{"billion laughs", map[string]*string{
			"teams/shop/kustomization.yaml": ptr("namespace: shop\nresources: [shop.yaml, lol.yaml]\n"),
			"teams/shop/lol.yaml":           ptr(billionLaughs())},
			"teams/shop/lol.yaml", "aliases are not allowed"},
		{"deep nesting", map[string]*string{
			"teams/shop/kustomization.yaml": ptr("namespace: shop\nresources: [shop.yaml, deep.yaml]\n"),
			"teams/shop/deep.yaml":          ptr("kind: Backend\nspec: " + strings.Repeat("{a: ", 10000) + "1" + strings.Repeat("}", 10000) + "\n")},
			"teams/shop/deep.yaml", "nested more than 64 levels deep"},
		{"an exec transformer directory", map[string]*string{
			"teams/shop/kustomization.yaml":    ptr("namespace: shop\nresources: [shop.yaml]\ntransformers: [tx]\n"),
			"teams/shop/tx/kustomization.yaml": ptr("resources: [exec.yaml]\n"),
			"teams/shop/tx/exec.yaml":          ptr("apiVersion: example.com/v1\nkind: Sed\nmetadata:\n  name: sed\n  annotations:\n    config.kubernetes.io/function: |\n      exec: {path: /bin/sh}\n")},
			"teams/shop/tx/exec.yaml", "KRM function plugin"},
		{"malformed YAML", map[string]*string{
			"teams/shop/shop.yaml": ptr("kind: Backend\n  metadata: [\n")},
			"teams/shop/shop.yaml", "malformed YAML"},
	}
	echoOn := "A"
	var last string
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			// echo's legitimate change in the same commit.
			echoOn = map[string]string{"A": "B", "B": "A"}[echoOn]
			files := map[string]*string{"teams/echo/routes.yaml": ptr(routeTo(strings.ToLower(echoOn)))}
			for k, v := range a.files {
				files[k] = v
			}
			start := time.Now()
			rev := must[string](t)(s.Commit("attack: "+a.name, files))
			st := must[status.Status](t)(s.WaitApplied(30*time.Second, rev))
			t.Logf("%s: applied in %v", a.name, time.Since(start).Round(time.Millisecond))
			rc := readyCond(t, st)
			if rc.Status != metav1.ConditionFalse || !strings.Contains(rc.Message, a.file) || !strings.Contains(rc.Message, a.want) {
				t.Errorf("Ready %s %q\nwant False naming %s and %q", rc.Status, rc.Message, a.file, a.want)
			}
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			defer wcancel()
			if err := c.WaitFor(wctx, stack.EchoHost, echoOn, nil); err != nil {
				t.Errorf("echo's change in the same commit was not served: %v", err)
			}
			assertHostAnswers(ctx, t, c, stack.EchoHost, echoOn, 10)
			assertHostAnswers(ctx, t, c, shopHost, "A", 10)
			for _, o := range st.Objects {
				if strings.HasPrefix(o.Namespace+"/", "echo/") && o.File != "" && !strings.HasPrefix(o.File, "teams/echo/") {
					t.Errorf("%s claims echo's namespace from %s", o.ObjectRef, o.File)
				}
			}
			last = rev
			// Undo the attack (but keep echo's change).
			undo := map[string]*string{}
			for k := range a.files {
				undo[k] = nil
			}
			for _, k := range []string{"teams/shop/kustomization.yaml", "teams/shop/shop.yaml"} {
				if _, ok := a.files[k]; ok {
					undo[k] = ptr(twoTeams(ups["A"], ups["B"])[k])
				}
			}
			if a.name != attacks[len(attacks)-1].name {
				must[status.Status](t)(s.WaitApplied(30*time.Second, must[string](t)(s.Commit("undo "+a.name, undo))))
			}
		})
	}
	t.Logf("peak RSS of the test process (gitxds in process): %d MiB", peakRSS()>>20)

	// A restart on the last attack's commit: the same refusal, no crash,
	// both hosts served.
	s.StopDaemon()
	if err := s.StartDaemon(""); err != nil {
		t.Fatal(err)
	}
	st := must[status.Status](t)(s.WaitStatus(30*time.Second, "the commit rebuilt after the restart", func(st status.Status) bool {
		c := st.Get(status.Ready)
		return st.LastAttemptedRevision == last && st.LastAppliedRevision == last && c != nil && c.Status != metav1.ConditionUnknown
	}))
	if rc := readyCond(t, st); rc.Status != metav1.ConditionFalse || !strings.Contains(rc.Message, "teams/shop/shop.yaml") {
		t.Errorf("after restart: Ready %s %q", rc.Status, rc.Message)
	}
	c2 := must[*clientT](t)(s.Client("client-2", nil))
	defer c2.Close()
	assertHostAnswers(ctx, t, c2, stack.EchoHost, echoOn, 5)
	// shop has no last accepted version in the new process's memory, but
	// the persisted state has it.
	assertHostAnswers(ctx, t, c2, shopHost, "A", 5)
}

func assertHostAnswers(ctx context.Context, t *testing.T, c *clientT, h, want string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		got, err := c.Call(ctx, h, nil)
		if err != nil || got != want {
			t.Fatalf("call %d to %s: %q, %v; want %s", i, h, got, err, want)
		}
	}
}

// peakRSS is the test process's peak resident set size (VmHWM), in bytes.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
