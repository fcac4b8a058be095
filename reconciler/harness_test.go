package reconciler

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/admin"
	"gitxds.dev/gitxds/reconciler/metrics"
	"gitxds.dev/gitxds/reconciler/notify"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/reconciler/xds"
	"gitxds.dev/gitxds/testenv/echorepo"
	"gitxds.dev/gitxds/testenv/gitserver"
	"gitxds.dev/gitxds/testenv/syncbuf"
)

// backendFile is teams/echo/backends.yaml with the backend on port.
func backendFile(port string) string { return echorepo.Backend("a", port) }

// repoFiles is the echo repository (package echorepo): a platform Gateway,
// one team with a Backend on port and an HTTPRoute, and the dev overlay.
func repoFiles(port string) map[string]string { return echorepo.Files(backendFile(port), "a") }

// harness is a reconciler on a real Git server, with no node connected
// (a rollout completes at once), driven by explicit ReconcileOnce calls.
type harness struct {
	t        *testing.T
	srv      *gitserver.Server
	repo     *gitserver.Repo
	src      *source.Source
	stateDir string
	log      *syncbuf.Buffer
	rec      *Reconciler
}

type harnessOptions struct {
	limits source.Limits
	// wrap replaces the source the reconciler sees (fault injection).
	wrap func(Source) Source
	// pipeline wraps the production pipeline.
	pipeline func(Builder) Builder
	// build are the build limits; zero is the defaults.
	build BuildLimits
	// exit replaces os.Exit.
	exit func(code int)
	// notifier receives the events.
	notifier interface{ Notify(notify.Event) }
	// describe lists a build's route changes (the history).
	describe func(*snapshot.Set, *pipeline.Result) []string
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, srv: gitserver.New(t, gitserver.Options{}), stateDir: t.TempDir(), log: &syncbuf.Buffer{}}
	repo, err := h.srv.CreateRepo("config")
	if err != nil {
		t.Fatal(err)
	}
	h.repo = repo
	if err := repo.WriteFiles(repoFiles("9001")); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Commit("first"); err != nil {
		t.Fatal(err)
	}
	h.src, err = source.New(source.Options{URL: repo.URL(), Ref: "main", MaxFileSize: o.limits.MaxFileSize, MaxRepoSize: o.limits.MaxRepoSize})
	if err != nil {
		t.Fatal(err)
	}
	h.start(o)
	return h
}

// start starts a reconciler (again: as after a restart) on the state
// directory and restores it.
func (h *harness) start(o harnessOptions) {
	h.t.Helper()
	store, err := OpenStore(h.stateDir)
	if err != nil {
		h.t.Fatal(err)
	}
	var src Source = h.src
	if o.wrap != nil {
		src = o.wrap(src)
	}
	m := metrics.New()
	var pipe Builder = pipeline.New(render.Options{})
	if o.pipeline != nil {
		pipe = o.pipeline(pipe)
	}
	exit := o.exit
	if exit == nil {
		exit = func(code int) { h.t.Errorf("the reconciler exited with code %d", code) }
	}
	h.rec = New(Options{
		Source: src, URL: h.repo.URL(), Ref: "main", Overlay: echorepo.Overlay, Interval: time.Hour,
		Pipeline: pipe, Fleet: admin.NewXDSFleet(xds.New(xds.Options{}), m), Store: store, Metrics: m,
		Log:   slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Build: o.build, Exit: exit, Notifier: o.notifier, Describe: o.describe,
	})
	if err := h.rec.Restore(); err != nil {
		h.t.Fatal(err)
	}
}

// commit writes the files and commits them; it returns the revision.
func (h *harness) commit(files map[string]string) string {
	h.t.Helper()
	if err := h.repo.WriteFiles(files); err != nil {
		h.t.Fatal(err)
	}
	sha, err := h.repo.Commit("change")
	if err != nil {
		h.t.Fatal(err)
	}
	return "main@sha1:" + sha
}

func (h *harness) head() string {
	h.t.Helper()
	sha, err := h.repo.Head()
	if err != nil {
		h.t.Fatal(err)
	}
	return "main@sha1:" + sha
}

// reconcile runs one reconcile and waits for the rollout it may have
// started to finish.
func (h *harness) reconcile() error {
	h.t.Helper()
	err := h.rec.ReconcileOnce(context.Background(), "test")
	h.waitIdle()
	return err
}

// waitIdle waits until no rollout is in progress.
func (h *harness) waitIdle() {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, active := h.rec.engine.Active(); !active {
			h.rec.mu.Lock()
			building := h.rec.building
			h.rec.mu.Unlock()
			if building == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the rollout did not finish: %+v", h.rec.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ready is the Ready condition.
func (h *harness) ready() (string, string, string) {
	st := h.rec.Status()
	c := st.Get(status.Ready)
	if c == nil {
		return "", "", ""
	}
	return string(c.Status), c.Reason, c.Message
}
