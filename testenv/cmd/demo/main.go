// Command demo shows gitxds in a minute: the bundled example repository
// behind a real Git server, gitxds serving it, gRPC upstreams, and real
// gRPC-Go xDS clients whose traffic follows each `git push`.
//
//	go run ./testenv/cmd/demo
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/xdsclient"
)

const payments = "payments.example.com"

func main() {
	keep := flag.Bool("keep", false, "keep the temporary directory (Git repository, state, log)")
	flag.Parse()
	if err := run(*keep); err != nil {
		fmt.Fprintln(os.Stderr, "\ndemo failed:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }
func say(format string, args ...any)  { fmt.Printf("    "+format+"\n", args...) }

func run(keep bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := stack.FindRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "gitxds-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(tmp)
	}
	logf, err := os.Create(filepath.Join(tmp, "gitxds.log"))
	if err != nil {
		return err
	}
	defer logf.Close()

	step("Starting a Git server with the example repository (repo-layout/ + overlays/), gitxds, and the upstreams")
	s, err := stack.Start(ctx, stack.Options{
		Root: root, Overlay: "overlays/dev", StateDir: filepath.Join(tmp, "state"), Interval: time.Second,
		Log: slog.New(slog.NewTextHandler(logf, nil)),
		// The addresses the example's Backends point at.
		Upstreams: map[string]string{
			"payments-v1": "127.0.0.1:19101", "payments-v2": "127.0.0.1:19102",
			"cart": "127.0.0.1:19201", "cart-canary": "127.0.0.1:19202", "catalog": "127.0.0.1:19203",
			"shadow": "127.0.0.1:19204", "search": "127.0.0.1:19301",
		},
	})
	if err != nil {
		return err
	}
	defer s.Close()
	say("git repository:  %s", s.Repo.URL())
	say("gitxds serve:    xDS on %s, admin API on http://%s (log: %s)", s.Daemon.XDSAddr, s.Daemon.AdminAddr, logf.Name())
	say("upstreams:       payments-v1, payments-v2, cart, cart-canary, catalog, shadow, search (gRPC; each answers with its name)")

	head, _ := s.Repo.Head()
	first := "main@sha1:" + head
	st, err := s.WaitApplied(20*time.Second, first)
	if err != nil {
		return err
	}
	say("gitxds applied %s: %s", first, ready(st))

	step("Connecting two proxyless gRPC clients (real gRPC-Go xDS clients) to gitxds")
	var clients []*xdsclient.Client
	for _, id := range []string{"shop-frontend-1", "shop-frontend-2"} {
		c, err := s.Client(id, map[string]string{"app": "shop-frontend"})
		if err != nil {
			return err
		}
		defer c.Close()
		clients = append(clients, c)
	}
	say("each dials xds:///%s; gitxds serves it an API listener named after the hostname", payments)
	if err := traffic(ctx, clients, "before any change"); err != nil {
		return err
	}

	step("A payments engineer shifts 80%% of traffic to payments-v2 and pushes")
	routes := "repo-layout/teams/payments/routes.yaml"
	orig, err := os.ReadFile(filepath.Join(s.Repo.WorkDir(), routes))
	if err != nil {
		return err
	}
	shifted := strings.Replace(string(orig), "name: payments-v1, weight: 100}", "name: payments-v1, weight: 20}", 1)
	shifted = strings.Replace(shifted, "name: payments-v2, weight: 0}", "name: payments-v2, weight: 80}", 1)
	if shifted == string(orig) {
		return fmt.Errorf("%s does not have the weights the demo expects", routes)
	}
	shift, err := s.Commit("payments: send 80% to v2", map[string]*string{routes: &shifted})
	if err != nil {
		return err
	}
	say("git push -> %s", shift)
	if st, err = s.WaitApplied(20*time.Second, shift); err != nil {
		return err
	}
	say("gitxds: %s", ready(st))
	if err := waitShare(ctx, clients[0], "payments-v2"); err != nil {
		return err
	}
	if err := traffic(ctx, clients, "after the weight shift"); err != nil {
		return err
	}

	step("Someone pushes a broken file (bad YAML in teams/shop)")
	broken := "apiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata:\n  name: cart\n spec: [\n"
	bad, err := s.Commit("shop: oops", map[string]*string{"repo-layout/teams/shop/shop.yaml": &broken})
	if err != nil {
		return err
	}
	say("git push -> %s", bad)
	if st, err = s.WaitAttempted(20*time.Second, bad); err != nil {
		return err
	}
	say("gitxds refused the shop team's directory; shop keeps its last accepted objects and every other team's changes would go on: %s", ready(st))
	say("lastAttemptedRevision: %s", st.LastAttemptedRevision)
	say("lastAppliedRevision:   %s (nothing served changed)", st.LastAppliedRevision)
	if err := traffic(ctx, clients, "while shop's broken file is refused"); err != nil {
		return err
	}

	step("git revert the broken commit")
	rev, err := s.Revert(bad)
	if err != nil {
		return err
	}
	say("git push -> %s", rev)
	if st, err = s.WaitApplied(20*time.Second, rev); err != nil {
		return err
	}
	say("gitxds: %s", ready(st))
	if st.Rollout != nil && st.Rollout.FastPath != "" {
		say("rollout: %s", st.Rollout.FastPath)
	}
	if err := traffic(ctx, clients, "after the revert"); err != nil {
		return err
	}

	step("Done: every change went through git; traffic never stopped")
	say("run the same control plane yourself: go run ./cmd/gitxds serve --repo . --ref main --path overlays/dev")
	if keep {
		say("kept %s (Git repository, gitxds state, gitxds.log)", tmp)
	} else {
		say("the gitxds log of this run was %s (use -keep to keep it)", logf.Name())
	}
	return nil
}

func ready(st status.Status) string {
	c := st.Get(status.Ready)
	if c == nil {
		return "Ready=Unknown"
	}
	return fmt.Sprintf("Ready=%s reason=%s: %s", c.Status, c.Reason, c.Message)
}

// traffic sends 50 calls from each client and prints who answered.
func traffic(ctx context.Context, clients []*xdsclient.Client, when string) error {
	total := map[string]int{}
	for _, c := range clients {
		d, err := c.Distribution(ctx, payments, 50, nil)
		if err != nil {
			return fmt.Errorf("traffic from %s: %w", c.NodeID(), err)
		}
		for k, v := range d {
			total[k] += v
		}
	}
	var names []string
	for k := range total {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %d", k, total[k]))
	}
	say("traffic %s: 100 calls to %s answered by: %s", when, payments, strings.Join(parts, ", "))
	return nil
}

func waitShare(ctx context.Context, c *xdsclient.Client, server string) error {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.WaitFor(wctx, payments, server, nil)
}
