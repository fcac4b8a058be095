package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/reconciler/status"
)

// flakySource fails FS the way a fetch that timed out does, while failing
// is set.
type flakySource struct {
	Source
	failing atomic.Bool
}

func (f *flakySource) FS(ctx context.Context, rev source.Revision) (filesys.FileSystem, error) {
	if f.failing.Load() {
		return nil, fmt.Errorf("fetch %s: %w: %w", rev.Short(), source.ErrUnreachable, context.DeadlineExceeded)
	}
	return f.Source.FS(ctx, rev)
}

// A revision whose fetch fails is a source failure: it is not recorded as
// failed, nothing of it is built, and the next reconcile tries it again.
func TestFetchFailureIsRetried(t *testing.T) {
	t.Parallel()
	flaky := &flakySource{}
	h := newHarness(t, harnessOptions{wrap: func(s Source) Source { flaky.Source = s; return flaky }})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	first := h.head()

	second := h.commit(map[string]string{"teams/echo/backends.yaml": backendFile("9002")})
	flaky.failing.Store(true)
	if err := h.reconcile(); !errors.Is(err, source.ErrUnreachable) {
		t.Fatalf("reconcile with a failing fetch: %v, want ErrUnreachable", err)
	}
	st := h.rec.Status()
	if s, reason, msg := h.ready(); s != "False" || reason != status.ReasonSourceFailed || !strings.Contains(msg, "retried on the next poll") {
		t.Errorf("Ready = %s/%s %q, want False/%s", s, reason, msg, status.ReasonSourceFailed)
	}
	if len(st.FailedRevisions) != 0 || st.LastAppliedRevision != first {
		t.Errorf("after the failed fetch: failed %+v, applied %s; want none failed, %s applied", st.FailedRevisions, st.LastAppliedRevision, first)
	}

	flaky.failing.Store(false)
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	if st := h.rec.Status(); st.LastAppliedRevision != second {
		t.Errorf("after the fetch works again: applied %s, want %s", st.LastAppliedRevision, second)
	}
	if s, reason, _ := h.ready(); s != "True" {
		t.Errorf("Ready = %s/%s, want True", s, reason)
	}
}

// A commit over the repository limit is refused while it is fetched: the
// revision is refused once (the limit named), the last good keeps serving,
// and later polls neither fetch it nor report the source as failing.
func TestTooLargeRevisionRefused(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	h := newHarness(t, harnessOptions{limits: source.Limits{MaxRepoSize: limit}})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	first := h.head()
	big := h.commit(map[string]string{"teams/echo/big.yaml": strings.Repeat("# filler line\n", 10_000)})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("over its limit of %d bytes", limit)
	for range 2 {
		st := h.rec.Status()
		s, reason, msg := h.ready()
		if s != "False" || reason != status.ReasonRenderFailed || !strings.Contains(msg, want) || !strings.Contains(msg, "refused while fetching") {
			t.Errorf("Ready = %s/%s %q, want False/%s naming %q", s, reason, msg, status.ReasonRenderFailed, want)
		}
		if st.LastAttemptedRevision != big || st.LastAppliedRevision != first || st.Source.LastError != "" {
			t.Errorf("attempted %s applied %s source error %q; want %s, %s, none", st.LastAttemptedRevision, st.LastAppliedRevision, st.Source.LastError, big, first)
		}
		if err := h.reconcile(); err != nil {
			t.Fatal(err)
		}
	}
}

// A branch force-pushed to a commit that does not descend from the applied
// one is applied, with a warning in the log and in status.
func TestForcePushAppliedWithWarning(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	first := strings.TrimPrefix(h.head(), "main@sha1:")
	ahead := h.commit(map[string]string{"teams/echo/backends.yaml": backendFile("9002")})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	if st := h.rec.Status(); st.LastAppliedRevision != ahead || st.Source.ForcePush != "" {
		t.Fatalf("fast-forward: applied %s, force-push %q; want %s and none", st.LastAppliedRevision, st.Source.ForcePush, ahead)
	}

	if err := h.repo.Reset(first); err != nil {
		t.Fatal(err)
	}
	rewritten := h.commit(map[string]string{"teams/echo/backends.yaml": backendFile("9003")})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	st := h.rec.Status()
	if st.LastAppliedRevision != rewritten {
		t.Errorf("applied %s, want the force-pushed %s", st.LastAppliedRevision, rewritten)
	}
	if !strings.Contains(st.Source.ForcePush, "does not descend") {
		t.Errorf("status.source.forcePush = %q, want it to say the revision does not descend from the applied one", st.Source.ForcePush)
	}
	if !strings.Contains(h.log.String(), "level=WARN msg=\"the branch was force-pushed") {
		t.Errorf("no WARN about the force-push in the log:\n%s", h.log)
	}

	next := h.commit(map[string]string{"teams/echo/backends.yaml": backendFile("9004")})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	if st := h.rec.Status(); st.LastAppliedRevision != next || st.Source.ForcePush != "" {
		t.Errorf("next fast-forward: applied %s, force-push %q; want %s and none", st.LastAppliedRevision, st.Source.ForcePush, next)
	}
}

// Over the real Git server, a team kustomization that lists a symbolic link
// out of the repository, or a Git LFS pointer, is refused saying so.
func TestSpecialFilesNamedInStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ file, want string }{
		{"passwd.yaml", `teams/echo/kustomization.yaml: resource "passwd.yaml" is a symbolic link (to /etc/passwd); symbolic links out of the repository are not followed`},
		{"big.yaml", `teams/echo/kustomization.yaml: resource "big.yaml" is a Git LFS pointer; LFS content is not fetched`},
	}
	if err := h.repo.Symlink("/etc/passwd", "teams/echo/passwd.yaml"); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		h.commit(map[string]string{
			"teams/echo/kustomization.yaml": "namespace: echo\nresources: [backends.yaml, routes.yaml, " + c.file + "]\n",
			"teams/echo/big.yaml":           "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n",
		})
		_ = h.reconcile()
		js, err := json.Marshal(h.rec.Status())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(js), strings.ReplaceAll(c.want, `"`, `\"`)) {
			t.Errorf("status does not say %q:\n%s", c.want, js)
		}
	}
}
