package ha_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/fleetsim"
	"gitxds.dev/gitxds/testenv/ha"
	"gitxds.dev/gitxds/testenv/stack"
)

// envSoak is how long TestSoak runs ("3m"); unset, it is skipped.
const envSoak = "GITXDS_HA_SOAK"

// Soak shape: groups of simulated nodes (node 0 of each is a canary),
// each connected to one replica and moved between replicas.
const (
	soakGroups    = 6
	soakGroupSize = 5
	// soakSettle is how long after a rollback is first seen every node
	// must be served the last good: replicas watch the FleetRollout and
	// apply it at once; this leaves room for a loaded machine.
	soakSettle = 4 * time.Second
)

// commitKind is what a soak commit does.
type commitKind int

const (
	commitValid   commitKind = iota // a new route: rolls out
	commitInvalid                   // invalid YAML in the team directory: not built
	commitPoison                    // a valid route the canaries NACK: rolled back
)

func (k commitKind) String() string {
	return [...]string{"valid", "invalid", "poison"}[k]
}

type soakGroup struct {
	id      int
	replica int
	fleet   *fleetsim.Fleet
	// moving is held while the group moves: the churn and the reconnects
	// of broken groups never move one group twice at once (that would
	// leave a node connected twice).
	moving sync.Mutex
}

type rssSample struct {
	at  time.Duration
	rss int64
}

// soak is the state of TestSoak: the chaos it made and what it checked.
type soak struct {
	t     *testing.T
	c     *ha.Cluster
	began time.Time

	mu         sync.Mutex
	groups     []*soakGroup
	poison     bool
	known      map[string]bool // route versions some node accepted outside a poison window
	commits    map[commitKind]int
	churns     int
	outages    int
	restarts   map[string]int // "SIGTERM", "SIGKILL"
	upSince    map[int]time.Time
	revisions  map[string]bool
	rollbacks  map[string]bool
	succeeded  map[string]bool
	failedSeen map[string]time.Time // revision -> when its rollback was first seen
	checks     int                  // checks of every node soakSettle after a rollback
	checked    map[string]bool      // the rollbacks so checked
	violations []string
	rss        map[string][]rssSample
	injected   int // NACKs the canaries sent
}

func (s *soak) violate(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := fmt.Sprintf("%s: ", time.Since(s.began).Round(time.Millisecond)) + fmt.Sprintf(format, args...)
	if len(s.violations) < 50 {
		s.t.Log("VIOLATION " + msg)
	}
	s.violations = append(s.violations, msg)
}

// reject is every node's NACK rule: in a poison window, a canary NACKs
// every route configuration version no node accepted before.
func (s *soak) reject(node, typeURL, version string) string {
	if typeURL != resource.RouteType || !strings.HasSuffix(node, "-0") {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.poison || s.known[version] {
		return ""
	}
	s.injected++
	return "soak: the canary rejects route configuration " + version
}

func (s *soak) labels(i int) map[string]string {
	if i == 0 {
		return map[string]string{"rollout-group": "canary"}
	}
	return map[string]string{"rollout-group": "stable"}
}

// connect (re)connects group g to replica r; false when r refused it.
func (s *soak) connect(g *soakGroup, r int) bool {
	err := s.tryConnect(g, r)
	return err == nil
}

func (s *soak) tryConnect(g *soakGroup, r int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := fleetsim.Start(ctx, soakGroupSize, s.c.Replicas[r].XDSAddr, fleetsim.Options{
		Prefix: fmt.Sprintf("g%d", g.id), Labels: s.labels})
	if err != nil {
		return err
	}
	f.Reject(s.reject)
	s.mu.Lock()
	g.fleet, g.replica = f, r
	s.mu.Unlock()
	return nil
}

// running is the indexes of the replicas whose process runs.
func (s *soak) running() []int {
	var out []int
	for i, r := range s.c.Replicas {
		if r.Running() {
			out = append(out, i)
		}
	}
	return out
}

// moveGroup closes g and connects it to another running replica (the
// same ids: a node reconnecting elsewhere keeps its stage).
func (s *soak) moveGroup(g *soakGroup, rng *rand.Rand) {
	if !g.moving.TryLock() {
		return
	}
	defer g.moving.Unlock()
	run := s.running()
	if len(run) == 0 {
		return
	}
	s.mu.Lock()
	old := g.fleet
	g.fleet = nil
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	to := run[rng.IntN(len(run))]
	if len(run) > 1 {
		for to == g.replica {
			to = run[rng.IntN(len(run))]
		}
	}
	s.connect(g, to)
}

// broken reports whether a node of g lost its stream (its replica went).
func broken(g *soakGroup) bool {
	if g.fleet == nil {
		return true
	}
	for _, n := range g.fleet.Nodes() {
		if n.Err() != nil {
			return true
		}
	}
	return false
}

func (s *soak) commit(ctx context.Context, k commitKind, n int, rng *rand.Rand) {
	// The versions the nodes run now are known good. A node calls the
	// rule (s.mu) under its own lock: read them without s.mu.
	var accepted []string
	if k == commitPoison {
		for _, g := range s.groups {
			s.mu.Lock()
			f := g.fleet
			s.mu.Unlock()
			if f == nil {
				continue
			}
			for _, nd := range f.Nodes() {
				if v := nd.AcceptedVersion(resource.RouteType); v != "" {
					accepted = append(accepted, v)
				}
			}
		}
	}
	s.mu.Lock()
	for _, v := range accepted {
		s.known[v] = true
	}
	s.poison = k == commitPoison
	s.commits[k]++
	s.mu.Unlock()
	route := "apiVersion: v1\nkind: [unclosed\n"
	if k != commitInvalid {
		b := []string{"a", "b"}[rng.IntN(2)]
		route = stack.EchoRoute(b) + fmt.Sprintf("  - matches: [{path: {type: PathPrefix, value: /soak/%d}}]\n"+
			"    backendRefs: [{group: gitxds.dev, kind: Backend, name: %s}]\n", n, b)
	}
	if _, err := s.c.Commit(ctx, fmt.Sprintf("soak %d: %s", n, k), map[string]*string{"teams/echo/routes.yaml": &route}); err != nil {
		s.t.Errorf("commit %d: %v", n, err)
	}
	if k == commitPoison {
		// Leave the rollback time to be checked before the next commit
		// supersedes it.
		select {
		case <-ctx.Done():
		case <-time.After(2 * soakSettle):
		}
	}
}

// check looks at the invariants once.
func (s *soak) check(ctx context.Context) {
	s.mu.Lock()
	groups := append([]*soakGroup(nil), s.groups...)
	poison := s.poison
	s.mu.Unlock()
	for _, g := range groups {
		s.mu.Lock()
		f := g.fleet
		s.mu.Unlock()
		if f == nil {
			continue
		}
		for _, n := range f.Nodes() {
			if e := n.EmptyResponses(); e > 0 {
				s.violate("node %s (on %s) was served %d listener or cluster response(s) without a resource", n.ID(), s.c.Replicas[g.replica].Name, e)
			}
			if !poison {
				if v := n.AcceptedVersion(resource.RouteType); v != "" {
					s.mu.Lock()
					s.known[v] = true
					s.mu.Unlock()
				}
			}
		}
	}
	st, ok, err := s.c.Rollout(ctx)
	if err != nil || !ok {
		return
	}
	s.mu.Lock()
	if st.Revision != "" {
		s.revisions[st.Revision] = true
	}
	if st.Phase == status.RolloutSucceeded {
		s.succeeded[st.Revision] = true
	}
	var since time.Time
	if st.Phase == status.RolloutFailed {
		s.rollbacks[st.Revision] = true
		if _, seen := s.failedSeen[st.Revision]; !seen {
			s.failedSeen[st.Revision] = time.Now()
		}
		since = s.failedSeen[st.Revision]
	}
	upSince := map[int]time.Time{}
	for k, v := range s.upSince {
		upSince[k] = v
	}
	s.mu.Unlock()
	if since.IsZero() || time.Since(since) < soakSettle || st.LastGoodHash == "" {
		return
	}
	s.checkRollback(ctx, st, upSince)
}

// checkRollback: soakSettle after a rollback, every node of every replica
// that has run for that long is served the last good, not a failed
// revision.
func (s *soak) checkRollback(ctx context.Context, st rollout.FleetState, upSince map[int]time.Time) {
	failed := map[string]string{st.Hash: st.Revision}
	for _, f := range st.Failed {
		if f.Hash != "" {
			failed[f.Hash] = f.Revision
		}
	}
	checked := false
	for i, r := range s.c.Replicas {
		if !r.Running() || time.Since(upSince[i]) < 2*soakSettle {
			continue
		}
		nodes, err := r.Nodes(ctx)
		if err != nil {
			continue
		}
		// The FleetRollout may have moved on meanwhile: check only if not.
		now, ok, err := s.c.Rollout(ctx)
		if err != nil || !ok || now.Revision != st.Revision || now.Phase != st.Phase {
			return
		}
		checked = true
		for _, n := range nodes {
			h := ha.ServedHash(n.Served)
			if h == "" {
				continue // connected, nothing served yet
			}
			if rev, bad := failed[h]; bad {
				s.violate("node %s on %s is served the failed revision %s (%s) %s after the rollback of %s; last good %s",
					n.ID, r.Name, rev, h, soakSettle, st.Revision, st.LastGoodHash)
			} else if h != st.LastGoodHash {
				s.violate("node %s on %s is served %s, not the last good %s, after the rollback of %s", n.ID, r.Name, n.Served, st.LastGoodHash, st.Revision)
			}
		}
	}
	if checked {
		s.mu.Lock()
		s.checks++
		s.checked[st.Revision] = true
		s.mu.Unlock()
	}
}

// sampleRSS records every running replica's RSS.
func (s *soak) sampleRSS() {
	at := time.Since(s.began)
	for _, r := range s.c.Replicas {
		if rss := r.RSS(); rss > 0 {
			s.mu.Lock()
			s.rss[r.Name] = append(s.rss[r.Name], rssSample{at, rss})
			s.mu.Unlock()
		}
	}
}

// every runs f every [min, max) until ctx ends.
func every(ctx context.Context, wg *sync.WaitGroup, rng *rand.Rand, min, max time.Duration, f func()) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			d := min
			if max > min {
				d += time.Duration(rng.Int64N(int64(max - min)))
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
			f()
		}
	}()
}

// TestSoak runs three replicas for $GITXDS_HA_SOAK under random valid,
// invalid and NACKed commits, node churn across replicas, Git outages and
// replica restarts (SIGTERM and SIGKILL, restarted as a kubelet would),
// and checks continuously: no node is ever served listeners or clusters
// without a resource; soakSettle after a rollback every node is served the
// last good, none a failed revision; each replica's RSS stays flat (the
// largest sample of the last third of the run at most 25 % + 16 MiB above
// the largest of the first third). At the end, with the chaos stopped, a
// last valid commit must reach every node.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	d := os.Getenv(envSoak)
	if d == "" {
		t.Skipf("a soak; set %s=3m to run it", envSoak)
	}
	dur, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("%s=%q: %v", envSoak, d, err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 17))
	ups := map[string]string{"a": stack.FreeAddr(), "b": stack.FreeAddr()}
	c := ha.Start(t, ha.Options{Files: ha.RolloutRepo(ups["a"], ups["b"], "10s", "2s"), Upstreams: ups})
	s := &soak{t: t, c: c, began: time.Now(), known: map[string]bool{}, commits: map[commitKind]int{},
		restarts: map[string]int{}, upSince: map[int]time.Time{}, revisions: map[string]bool{}, rollbacks: map[string]bool{},
		succeeded: map[string]bool{}, failedSeen: map[string]time.Time{}, checked: map[string]bool{}, rss: map[string][]rssSample{}}
	for i := range c.Replicas {
		s.upSince[i] = s.began
	}
	for i := 0; i < soakGroups; i++ {
		g := &soakGroup{id: i}
		s.groups = append(s.groups, g)
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
			err := s.tryConnect(g, i%len(c.Replicas))
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("group %d could not connect to %s: %v", i, c.Replicas[i%len(c.Replicas)].Name, err)
			}
			t.Logf("group %d, %s: %v", i, c.Replicas[i%len(c.Replicas)].Name, err)
		}
	}
	defer func() {
		for _, g := range s.groups {
			if g.fleet != nil {
				g.fleet.Close()
			}
		}
	}()
	wait, wcancel := context.WithTimeout(context.Background(), time.Minute)
	for _, g := range s.groups {
		if _, err := g.fleet.Wait(wait, func(n *fleetsim.Node) (time.Time, bool) {
			return time.Time{}, n.AcceptedVersion(resource.ListenerType) != ""
		}); err != nil {
			t.Fatalf("group %d: %v", g.id, err)
		}
	}
	wcancel()
	s.sampleRSS()

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	// Separate sources: the goroutines do not share one.
	src := func() *rand.Rand { return rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())) }
	commitRng, churnRng, reconnectRng, outageRng, restartRng := src(), src(), src(), src(), src()
	n := 0
	every(ctx, &wg, src(), 3*time.Second, 7*time.Second, func() {
		n++
		k := commitValid
		switch p := commitRng.IntN(10); {
		case p < 2:
			k = commitInvalid
		case p < 5:
			k = commitPoison
		}
		s.commit(ctx, k, n, commitRng)
	})
	every(ctx, &wg, src(), 500*time.Millisecond, 500*time.Millisecond, func() {
		s.check(ctx)
		// Nodes whose replica went reconnect elsewhere, as Envoy would.
		for _, g := range s.groups {
			s.mu.Lock()
			b := broken(g)
			s.mu.Unlock()
			if b {
				s.moveGroup(g, reconnectRng)
			}
		}
	})
	every(ctx, &wg, src(), 2*time.Second, 5*time.Second, func() {
		s.moveGroup(s.groups[churnRng.IntN(len(s.groups))], churnRng)
		s.mu.Lock()
		s.churns++
		s.mu.Unlock()
	})
	every(ctx, &wg, src(), 25*time.Second, 40*time.Second, func() {
		c.Git.Stop()
		s.mu.Lock()
		s.outages++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(5*time.Second + time.Duration(outageRng.Int64N(int64(7*time.Second)))):
		}
		if err := c.Git.Start(); err != nil {
			t.Errorf("git server restart: %v", err)
		}
	})
	every(ctx, &wg, src(), 20*time.Second, 35*time.Second, func() {
		run := s.running()
		if len(run) < len(c.Replicas) {
			return
		}
		i := run[restartRng.IntN(len(run))]
		r := c.Replicas[i]
		sig := "SIGTERM"
		if restartRng.IntN(2) == 0 {
			sig = "SIGKILL"
			r.Kill()
		} else if !r.Stop(30 * time.Second) {
			s.violate("%s still runs 30 s after SIGTERM", r.Name)
			r.Kill()
		}
		time.Sleep(time.Second + time.Duration(restartRng.Int64N(int64(2*time.Second))))
		if err := r.Start(); err != nil {
			t.Errorf("restart %s: %v", r.Name, err)
		}
		s.mu.Lock()
		s.restarts[sig]++
		s.upSince[i] = time.Now()
		s.mu.Unlock()
	})
	every(ctx, &wg, src(), 2*time.Second, 2*time.Second, s.sampleRSS)
	wg.Wait()
	if err := c.Git.Start(); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Replicas {
		if !r.Running() {
			if err := r.Start(); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.sampleRSS()
	chaos := time.Since(s.began)

	// The end: a last valid commit reaches every node.
	end, ecancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer ecancel()
	c.WaitLeader(time.Minute)
	s.commit(end, commitValid, n+1, commitRng)
	head, err := c.Repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	// Nodes whose replica went during the last restart reconnect.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		left := 0
		for _, g := range s.groups {
			if broken(g) {
				s.moveGroup(g, churnRng)
				if broken(g) {
					left++
				}
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d group(s) could not reconnect", left)
		}
	}
	final := c.WaitRollout(90*time.Second, "Succeeded with the last commit", func(st rollout.FleetState) bool {
		return strings.HasSuffix(st.Revision, head) && st.Phase == status.RolloutSucceeded
	})
	for _, g := range s.groups {
		if _, err := g.fleet.Wait(end, func(n *fleetsim.Node) (time.Time, bool) {
			return time.Time{}, n.EmptyResponses() == 0
		}); err != nil {
			t.Errorf("group %d: %v", g.id, err)
		}
	}
	for _, r := range c.Replicas {
		deadline := time.Now().Add(30 * time.Second)
		for {
			nodes, err := r.Nodes(end)
			off := 0
			for _, nd := range nodes {
				if ha.ServedHash(nd.Served) != final.Hash {
					off++
				}
			}
			if err == nil && off == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: %d node(s) not served the last commit %s (%v)", r.Name, off, final.Hash, err)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	s.check(end)
	s.report(chaos)
}

// report logs the soak's figures and fails on violations and RSS growth.
func (s *soak) report(chaos time.Duration) {
	t := s.t
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name := range s.rss {
		names = append(names, name)
	}
	sort.Strings(names)
	var rss []string
	for _, name := range names {
		ss := s.rss[name]
		third := chaos / 3
		var maxAll, maxFirst, maxLast int64
		for _, x := range ss {
			maxAll = max(maxAll, x.rss)
			if x.at < third {
				maxFirst = max(maxFirst, x.rss)
			}
			if x.at >= chaos-third {
				maxLast = max(maxLast, x.rss)
			}
		}
		rss = append(rss, fmt.Sprintf("%s start %d end %d max %d MiB (first third max %d, last third max %d)",
			name, ss[0].rss>>20, ss[len(ss)-1].rss>>20, maxAll>>20, maxFirst>>20, maxLast>>20))
		if maxFirst > 0 && maxLast > maxFirst+maxFirst/4+16<<20 {
			t.Errorf("%s: RSS grew: the last third's largest sample %d MiB, the first third's %d MiB", name, maxLast>>20, maxFirst>>20)
		}
	}
	restarts := s.restarts["SIGTERM"] + s.restarts["SIGKILL"]
	t.Logf("SOAK duration %s (chaos) | commits %d (valid %d, invalid %d, poison %d) | rollouts %d (succeeded %d, rolled back %d, of which %d checked %s after: %d checks) | canary NACKs %d | node moves %d | git outages %d | replica restarts %d (SIGTERM %d, SIGKILL %d) | invariant violations %d",
		chaos.Round(time.Second), s.commits[commitValid]+s.commits[commitInvalid]+s.commits[commitPoison],
		s.commits[commitValid], s.commits[commitInvalid], s.commits[commitPoison],
		len(s.revisions), len(s.succeeded), len(s.rollbacks), len(s.checked), soakSettle, s.checks, s.injected,
		s.churns, s.outages, restarts, s.restarts["SIGTERM"], s.restarts["SIGKILL"], len(s.violations))
	for _, l := range rss {
		t.Logf("SOAK RSS %s", l)
	}
	if len(s.violations) > 0 {
		t.Errorf("%d invariant violation(s); first: %s", len(s.violations), s.violations[0])
	}
}
