package reconciler

import (
	"fmt"
	"gitxds.dev/gitxds/reconciler/diff"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"strings"
	"sync"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/notify"
)

type recorder struct {
	mu sync.Mutex
	ev []notify.Event
}

func (r *recorder) Notify(e notify.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ev = append(r.ev, e)
}

// of lists the events of a revision as "state reason".
func (r *recorder) of(rev string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.ev {
		if e.Revision == rev {
			s := fmt.Sprintf("%s %s", e.State, e.Reason)
			if e.Stage != "" {
				s += " (stage " + e.Stage + ")"
			}
			out = append(out, s)
		}
	}
	return out
}

// TestEvents: each revision is pending while it is built and at each
// rollout stage, then a success
// when applied with every object accepted, a failure when refused, and a
// failure when applied with a team's directory rejected; one event per
// change, none repeated.
func TestEvents(t *testing.T) {
	rec := &recorder{}
	h := newHarness(t, harnessOptions{notifier: rec})
	first := h.head()
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	broken := h.commit(map[string]string{"platform/gateways.yaml": "kind: [\n"})
	h.reconcile()
	h.repo.WriteFiles(repoFiles("9001"))
	teamBroken := h.commit(map[string]string{"teams/echo/routes.yaml": "kind: [\n"})
	h.reconcile()
	fixed := h.commit(repoFiles("9002"))
	h.reconcile()
	h.reconcile() // nothing new: no event

	for rev, want := range map[string]string{
		first:      "pending Progressing, pending Progressing (stage all), success ReconciliationSucceeded",
		broken:     "pending Progressing, failure BuildFailed",
		teamBroken: "pending Progressing, failure ObjectsRejected",
		fixed:      "pending Progressing, pending Progressing (stage all), success ReconciliationSucceeded",
	} {
		if got := strings.Join(rec.of(rev), ", "); got != want {
			t.Errorf("%s: events %q, want %q", rev, got, want)
		}
	}
	for _, e := range rec.ev {
		if e.Overlay != "overlays/dev" || e.Message == "" {
			t.Errorf("event without overlay or message: %+v", e)
		}
	}
	// One structured line per event, with the kind Kubernetes Events use
	// as their reason.
	for _, want := range []string{
		"msg=event revision=" + first + " kind=RevisionAttempted state=pending",
		"msg=event revision=" + first + " kind=StageStarted state=pending reason=Progressing stage=all",
		"msg=event revision=" + first + " kind=RolloutSucceeded state=success",
		"msg=event revision=" + broken + " kind=RevisionRefused state=failure reason=BuildFailed",
		"msg=event revision=" + teamBroken + " kind=ObjectsRejected state=failure",
	} {
		if !strings.Contains(h.log.String(), want) {
			t.Errorf("no log line %q", want)
		}
	}

	// The history: one entry per revision, persisted across a restart.
	h.start(harnessOptions{notifier: rec})
	hist := h.rec.History()
	var got []string
	for _, e := range hist {
		got = append(got, e.Result+" "+e.Reason)
		if e.Finished == nil || e.Duration == "" {
			t.Errorf("%s: not finished: %+v", e.Revision, e)
		}
	}
	if want := "success ReconciliationSucceeded, failure BuildFailed, failure ObjectsRejected, success ReconciliationSucceeded"; strings.Join(got, ", ") != want {
		t.Errorf("history after a restart: %q, want %q", strings.Join(got, ", "), want)
	}
	if hist[1].Revision != broken || !strings.Contains(hist[1].Message, "platform/gateways.yaml") {
		t.Errorf("history entry of the broken commit: %+v", hist[1])
	}
}

// TestHistoryRouteChanges: a revision's history entry lists its route-level
// changes against the last good version.
func TestHistoryRouteChanges(t *testing.T) {
	h := newHarness(t, harnessOptions{describe: func(lastGood *snapshot.Set, b *pipeline.Result) []string {
		rep := diff.Snapshots(lastGood, b.Set)
		var lines []string
		for _, c := range rep.Routes {
			lines = append(lines, c.Line())
		}
		return lines
	}})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	files := repoFiles("9001")
	files["teams/echo/routes.yaml"] = strings.Replace(files["teams/echo/routes.yaml"], "value: /}", "value: /v2}", 1)
	rev := h.commit(files)
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		hist := h.rec.History()
		last := hist[len(hist)-1]
		if last.Revision == rev && len(last.Changes) > 0 {
			if got := strings.Join(last.Changes, "\n"); !strings.Contains(got, "echo.example.com") || !strings.Contains(got, "/v2") {
				t.Errorf("changes of %s:\n%s", rev, got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no route changes recorded for %s: %+v", rev, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
