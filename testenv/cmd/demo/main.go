// Command demo shows gitxds in under a minute: the bundled example
// repository behind a real Git server, gitxds serving it, gRPC upstreams,
// and real gRPC-Go xDS clients (one canary node, two stable nodes) whose
// traffic follows each `git push`: a canary stage, a metric gate that
// rolls a bad change back by itself, `gitxds preview` of a branch, a `git
// revert` through the fast path, and the refusals that keep one team's
// mistakes away from the others.
//
//	go run ./testenv/cmd/demo [-keep] [-gate auto|prometheus|dataplane]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/preview"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/dataplane"
	"gitxds.dev/gitxds/testenv/prom"
	"gitxds.dev/gitxds/testenv/stack"
)

const (
	payments = "payments.example.com"
	// overlay is the demo's overlay in its temporary repository.
	overlay = "overlays/demo"
	// Where the files the demo changes are in the example.
	paymentsRoutes   = "repo-layout/teams/payments/routes.yaml"
	paymentsBackends = "repo-layout/teams/payments/backends.yaml"
	shopFile         = "repo-layout/teams/shop/shop.yaml"
	// The RolloutPolicy of the demo: the canary bakes for bake while its
	// error ratio stays at most maxErrorRatio.
	bake          = 8 * time.Second
	maxErrorRatio = 0.1
	// payments-v3 fails failCalls of every ofCalls calls.
	failCalls, ofCalls = 2, 5
)

type options struct {
	keep bool
	gate string
}

func main() {
	var o options
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (Git repository, state, log)")
	flag.StringVar(&o.gate, "gate", gateAuto, "what the metric gate queries: auto (Prometheus when installed), prometheus, or dataplane (the data plane's own query API)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "\ndemo failed:", err)
		os.Exit(1)
	}
}

// demo is the running demo.
type demo struct {
	printer
	s     *stack.Stack
	admin string
	calls *dataplane.Traffic
	// groups are the node ids per rollout-group.
	groups      map[string][]string
	lastRollout string
	// quiet: follow does not print the rollout.
	quiet   bool
	prom    *prom.Server
	cleanup []func()
}

// demoOverlay is overlays/demo: the resources of overlays/dev (the
// platform and every team directory, listed as they are there: gitxds
// refuses a broken team directory alone when the overlay lists it) with
// the platform's RolloutPolicy as the demo needs it. analysis is the
// address of what the metric gate queries.
func demoOverlay(root, analysis string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "overlays/dev/kustomization.yaml"))
	if err != nil {
		return "", err
	}
	var dev struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(b, &dev); err != nil || len(dev.Resources) == 0 {
		return "", fmt.Errorf("overlays/dev/kustomization.yaml: no resources the demo can use (%v)", err)
	}
	return `# The demo's overlay (written by testenv/cmd/demo in its temporary repository):
# overlays/dev's resources, with the platform's RolloutPolicy replaced by a
# canary stage (nodes labelled rollout-group: canary) that bakes ` + bake.String() + ` while a
# metric gate watches its share of failed calls, then every other node.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ` + strings.Join(dev.Resources, "\n- ") + `
patches:
- target: {kind: RolloutPolicy, name: default}
  patch: |-
    - op: replace
      path: /spec
      value:
        ackTimeout: 5s
        stages:
        - name: canary
          nodeSelector: {matchLabels: {rollout-group: canary}}
          bake: ` + bake.String() + `
        - name: all
          percent: 100
        analysis:
          interval: 1s
          prometheus: {address: "` + analysis + `"}
          metrics:
          - name: error-ratio
            query: '` + dataplane.ErrorRatioQuery("{{ .NodeRegex }}", 5*time.Second) + `'
            max: ` + fmt.Sprint(maxErrorRatio) + `
`, nil
}

func run(ctx context.Context, w io.Writer, o options) error {
	start := time.Now()
	d := &demo{printer: printer{w}, groups: map[string][]string{}}
	defer func() {
		for i := len(d.cleanup) - 1; i >= 0; i-- {
			d.cleanup[i]()
		}
	}()
	root, err := stack.FindRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "gitxds-demo-")
	if err != nil {
		return err
	}
	if !o.keep {
		d.cleanup = append(d.cleanup, func() { os.RemoveAll(tmp) })
	}
	logf, err := os.Create(filepath.Join(tmp, "gitxds.log"))
	if err != nil {
		return err
	}
	d.cleanup = append(d.cleanup, func() { logf.Close() })

	fmt.Fprintln(w, "gitxds demo: a Git repository, gitxds serving it, real gRPC-Go xDS clients. Every change is a git push.")
	d.step("0. Set-up: the example repository (repo-layout/, overlays/) behind a Git server, gitxds, the upstreams, three nodes")
	// The data plane counts every call per node; the metric gate reads it.
	dp, err := dataplane.StartMetrics("127.0.0.1:0")
	if err != nil {
		return err
	}
	d.cleanup = append(d.cleanup, dp.Close)
	gateAddr, which, err := d.gate(ctx, dp, o.gate)
	if err != nil {
		return err
	}
	ov, err := demoOverlay(root, gateAddr)
	if err != nil {
		return err
	}
	s, err := stack.Start(ctx, stack.Options{
		Root: root, Overlay: overlay, StateDir: filepath.Join(tmp, "state"), Interval: time.Second,
		Log:   slog.New(slog.NewTextHandler(logf, nil)),
		Extra: map[string]string{overlay + "/kustomization.yaml": ov},
		// The addresses the example's Backends point at, and payments-v3's.
		Upstreams: map[string]string{
			"payments-v1": "127.0.0.1:19101", "payments-v2": "127.0.0.1:19102", "payments-v3": "127.0.0.1:19103",
			"cart": "127.0.0.1:19201", "cart-canary": "127.0.0.1:19202", "catalog": "127.0.0.1:19203",
			"shadow": "127.0.0.1:19204", "search": "127.0.0.1:19301",
		},
	})
	if err != nil {
		return err
	}
	d.cleanup = append(d.cleanup, s.Close)
	d.s, d.admin = s, s.Daemon.AdminAddr
	d.say("git repository: %s (%s adds a canary stage and a metric gate to overlays/dev)", s.Repo.URL(), overlay)
	d.say("gitxds serve:   xDS on %s, admin API on http://%s (log: %s)", s.Daemon.XDSAddr, s.Daemon.AdminAddr, logf.Name())
	d.say("%s", which)
	head, _ := s.Repo.Head()
	d.quiet = true // the first revision's rollout has no node to go to
	st, err := d.applied(ctx, "main@sha1:"+head)
	d.quiet = false
	if err != nil {
		return err
	}
	d.say("gitxds: %s", ready(st))

	var callers []dataplane.Caller
	for _, n := range []struct{ id, group string }{{"canary-1", groupCanary}, {"stable-1", groupStable}, {"stable-2", groupStable}} {
		c, err := s.Client(n.id, map[string]string{"rollout-group": n.group})
		if err != nil {
			return err
		}
		d.cleanup = append(d.cleanup, func() { c.Close() })
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = c.WaitFor(wctx, payments, "payments-v1", nil)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", n.id, err)
		}
		callers = append(callers, c)
		d.groups[n.group] = append(d.groups[n.group], n.id)
	}
	d.calls = dataplane.StartTraffic(dp, callers, payments, 50*time.Millisecond, 2*time.Second)
	d.cleanup = append(d.cleanup, d.calls.Stop)
	d.say("nodes: canary-1 (rollout-group: canary), stable-1 and stable-2 (rollout-group: stable), proxyless gRPC-Go xDS clients")
	d.say("       each calling %s 20 times a second", payments)
	if d.prom != nil {
		if err := d.prom.WaitScraped(ctx, 1); err != nil {
			return err
		}
	}
	if err := d.window(ctx, time.Second, "before any change"); err != nil {
		return err
	}

	shift, err := d.canaryPush(ctx)
	if err != nil {
		return err
	}
	if err := d.gateRollback(ctx); err != nil {
		return err
	}
	if err := d.preview(ctx); err != nil {
		return err
	}
	if err := d.fastRevert(ctx, shift); err != nil {
		return err
	}
	if err := d.ownership(ctx); err != nil {
		return err
	}
	if err := d.brokenTeam(ctx); err != nil {
		return err
	}

	d.step("Done in %s: every change was a git push, and traffic never stopped.", time.Since(start).Round(100*time.Millisecond))
	d.say("serve the example yourself: go run ./cmd/gitxds serve --repo . --ref main --path overlays/dev")
	if o.keep {
		d.say("kept %s (Git repository, gitxds state, gitxds.log)", tmp)
	} else {
		d.say("-keep keeps the temporary directory (Git repository, gitxds state, gitxds.log)")
	}
	return nil
}

// canaryPush: a weight shift goes through the canary stage. It returns the
// revision.
func (d *demo) canaryPush(ctx context.Context) (string, error) {
	d.step("1. A push goes to the canary first: payments sends 80%% of its calls to payments-v2")
	routes, err := d.read(paymentsRoutes)
	if err != nil {
		return "", err
	}
	shifted := strings.Replace(routes, "name: payments-v1, weight: 100}", "name: payments-v1, weight: 20}", 1)
	shifted = strings.Replace(shifted, "name: payments-v2, weight: 0}", "name: payments-v2, weight: 80}", 1)
	if shifted == routes {
		return "", fmt.Errorf("%s does not have the weights the demo expects", paymentsRoutes)
	}
	rev, err := d.s.Commit("payments: send 80% to v2", map[string]*string{paymentsRoutes: &shifted})
	if err != nil {
		return "", err
	}
	d.say("git push -> %s", short(rev))
	if _, err := d.follow(ctx, rev, 20*time.Second, "the canary stage baking", func(st status.Status) bool {
		return st.Rollout != nil && st.Rollout.Revision == rev && len(st.Rollout.Stages) > 1 && st.Rollout.Stages[0].Phase == status.StageBaking
	}); err != nil {
		return "", err
	}
	// Watch the traffic while the canary bakes (and the gate reads it).
	d.calls.Reset()
	since := time.Now()
	st, err := d.follow(ctx, rev, 20*time.Second, "two seconds of the canary's bake", func(st status.Status) bool {
		return time.Since(since) >= 2*time.Second || st.Rollout.Stages[0].Phase != status.StageBaking
	})
	if err != nil {
		return "", err
	}
	d.traffic("while the canary bakes")
	if st.Rollout.Stages[0].Phase != status.StageBaking {
		return "", fmt.Errorf("the canary stage ended before the demo could watch it: %s", rolloutLine(st.Rollout, true))
	}
	if st, err = d.applied(ctx, rev); err != nil {
		return "", err
	}
	d.say("gitxds: %s", ready(st))
	return rev, d.window(ctx, time.Second, "after the rollout")
}

// gateRollback: a change that validates but fails its metric gate is rolled
// back by gitxds, from the canary, before any stable node gets it.
func (d *demo) gateRollback(ctx context.Context) error {
	d.step("2. A change that passes validation but fails its metric gate is rolled back by itself")
	d.say("payments adds payments-v3 (a build with a bug: %d of every %d calls fail) and sends it all its calls", failCalls, ofCalls)
	d.s.Upstreams["payments-v3"].SetFailureShare(codes.Internal, failCalls, ofCalls)
	backends, err := d.read(paymentsBackends)
	if err != nil {
		return err
	}
	routes, err := d.read(paymentsRoutes)
	if err != nil {
		return err
	}
	backends += "---\napiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata:\n  name: payments-v3\nspec:\n  endpoints:\n  - ip: {address: 127.0.0.1, port: 19103}\n"
	moved := strings.Replace(routes, "name: payments-v1, weight: 20}", "name: payments-v1, weight: 0}", 1)
	moved = strings.Replace(moved, "name: payments-v2, weight: 80}", "name: payments-v3, weight: 100}", 1)
	if moved == routes {
		return fmt.Errorf("%s does not have the weights the demo expects", paymentsRoutes)
	}
	bad, err := d.s.Commit("payments: all calls to v3", map[string]*string{paymentsBackends: &backends, paymentsRoutes: &moved})
	if err != nil {
		return err
	}
	d.say("git push -> %s", short(bad))
	if _, err := d.follow(ctx, bad, 20*time.Second, "the canary stage baking", func(st status.Status) bool {
		return st.Rollout != nil && st.Rollout.Revision == bad && st.Rollout.Stages[0].Phase == status.StageBaking
	}); err != nil {
		return err
	}
	d.calls.Reset()
	st, err := d.follow(ctx, bad, bake+20*time.Second, "the rollout's outcome", func(st status.Status) bool {
		c := st.Get(status.Ready)
		failed := st.LastAttemptedRevision == bad && c != nil && c.Reason == status.ReasonRolloutFailed
		return failed || st.LastAppliedRevision == bad
	})
	if err != nil {
		return err
	}
	d.traffic("while the canary had it")
	d.say("gitxds: %s", ready(st))
	if st.LastAppliedRevision == bad {
		return fmt.Errorf("the metric gate did not stop %s: it was applied", bad)
	}
	if err := d.window(ctx, time.Second, "after the rollback"); err != nil {
		return err
	}
	rev, err := d.s.Revert(bad)
	if err != nil {
		return err
	}
	if st, err = d.applied(ctx, rev); err != nil {
		return err
	}
	d.say("git revert %s -> %s; gitxds: %s", short(bad), short(rev), ready(st))
	return nil
}

// preview runs `gitxds preview` of a branch, in process (package preview is
// what the CLI runs).
func (d *demo) preview(ctx context.Context) error {
	const branch = "shop-cart-half"
	d.step("3. A pull request is reviewed with gitxds preview: shop sends half of cart's calls to cart-canary, on a branch")
	shop, err := d.read(shopFile)
	if err != nil {
		return err
	}
	half := strings.Replace(shop, "name: cart, weight: 90}", "name: cart, weight: 50}", 1)
	half = strings.Replace(half, "name: cart-canary, weight: 10}", "name: cart-canary, weight: 50}", 1)
	if half == shop {
		return fmt.Errorf("%s does not have the weights the demo expects", shopFile)
	}
	if err := d.s.Repo.Checkout(branch); err != nil {
		return err
	}
	sha, err := d.s.Commit("shop: half of cart to cart-canary", map[string]*string{shopFile: &half})
	if err != nil {
		return err
	}
	if err := d.s.Repo.Checkout("main"); err != nil {
		return err
	}
	d.say("git push origin %s -> %s", branch, strings.TrimPrefix(short(sha), "main@"))
	d.say("gitxds preview --repo %s --path %s --base main --head %s -o markdown:", d.s.Repo.URL(), overlay, branch)
	p, err := preview.Run(ctx, preview.GitLoader(d.s.Repo.URL(), source.Limits{}), "main", branch, preview.Options{Path: overlay, Render: render.Options{}})
	if err != nil {
		return err
	}
	var md strings.Builder
	if err := p.WriteMarkdown(&md); err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(md.String(), "\n"), "\n")
	const shown = 14
	for i, l := range lines {
		if i == shown {
			d.say("      ... (%d more lines: the changes, each xDS client's ACK, the rollout stages)", len(lines)-shown)
			break
		}
		d.say("      %s", l)
	}
	if !p.Valid {
		return fmt.Errorf("preview of %s: %s", branch, preview.Verdict(p))
	}
	return nil
}

// fastRevert: a git revert of the change that was serving goes to every
// node at once.
func (d *demo) fastRevert(ctx context.Context, shift string) error {
	d.step("4. git revert of a change that was serving goes out at once (fast path: no stage, no bake)")
	rev, err := d.s.Revert(shift)
	if err != nil {
		return err
	}
	d.say("git revert %s (step 1's weight shift) -> %s", short(shift), short(rev))
	st, err := d.applied(ctx, rev)
	if err != nil {
		return err
	}
	d.say("gitxds: %s", ready(st))
	return d.window(ctx, time.Second, "after the revert")
}

// ownership: another team's route for a hostname it does not own is refused.
func (d *demo) ownership(ctx context.Context) error {
	d.step("5. A team cannot take another team's hostname: shop routes part of %s to its cart", payments)
	shop, err := d.read(shopFile)
	if err != nil {
		return err
	}
	const name = "payments-takeover"
	shop += `---
# shop tries to serve the gRPC calls of payments.example.com, which the
# platform gave to payments (gitxds.dev/hostnames on its Namespace).
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: ` + name + `
spec:
  parentRefs:
  - {name: edge, namespace: platform, sectionName: public}
  hostnames: [` + payments + `]
  rules:
  - matches: [{path: {type: PathPrefix, value: /grpc.testing.TestService/}}]
    backendRefs: [{group: gitxds.dev, kind: Backend, name: cart}]
`
	rev, err := d.s.Commit("shop: take payments' gRPC calls", map[string]*string{shopFile: &shop})
	if err != nil {
		return err
	}
	d.say("git push -> %s", short(rev))
	st, err := d.applied(ctx, rev)
	if err != nil {
		return err
	}
	for _, obj := range st.Objects {
		if obj.Kind != "HTTPRoute" || obj.Namespace != "shop" || obj.Name != name {
			continue
		}
		for _, c := range obj.Conditions {
			if c.Status != metav1.ConditionTrue && c.Type == "Accepted" || c.Status == metav1.ConditionTrue && c.Type == "PartiallyInvalid" {
				d.say("status of %s (%s): %s=%s %s: %s", obj.ObjectRef, obj.File, c.Type, c.Status, c.Reason, c.Message)
			}
		}
	}
	d.say("gitxds: %s", ready(st))
	return d.window(ctx, time.Second, "after shop's push")
}

// brokenTeam: a team's broken YAML is refused for that team alone.
func (d *demo) brokenTeam(ctx context.Context) error {
	d.step("6. A team's broken YAML is refused for that team alone")
	broken := "apiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata:\n  name: cart\n spec: [\n"
	rev, err := d.s.Commit("shop: oops", map[string]*string{shopFile: &broken})
	if err != nil {
		return err
	}
	d.say("shop pushes a broken %s -> %s", strings.TrimPrefix(shopFile, "repo-layout/"), short(rev))
	st, err := d.follow(ctx, rev, 20*time.Second, "the broken push's outcome", func(st status.Status) bool {
		c := st.Get(status.Reconciling)
		return st.LastAttemptedRevision == rev && (c == nil || c.Status != metav1.ConditionTrue)
	})
	if err != nil {
		return err
	}
	d.say("gitxds: %s", ready(st))
	return d.window(ctx, time.Second, "with shop's directory refused")
}

// read reads a file of the demo's repository.
func (d *demo) read(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(d.s.Repo.WorkDir(), name))
	return string(b), err
}
