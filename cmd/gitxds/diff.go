package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"gitxds.dev/gitxds/reconciler/diff"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/snapshot"
)

func newDiff() *cobra.Command {
	var (
		f                    repoFlags
		from, to, live, outp string
		exitCode             bool
	)
	c := &cobra.Command{
		Use:   "diff --repo URL|PATH --path OVERLAY (--from REV | --live ADMIN_URL) [--to REV] [-o text|markdown|json] [--exit-code]",
		Short: "Show what the fleet would serve differently between two revisions, or against a running server",
		Long: `diff renders the overlay at two revisions (branches, tags, SHAs, refs/pull/N/head; on a local
clone or a URL) and prints what changes: the objects added, removed or changed with their
files; each route change once (hostnames and match → backends and shares, before and after,
with its HTTPRoute, rule and file, and the node classes and listeners that serve it); then
the semantic difference of the xDS resources behind them, with YAML diffs: per listener, per
route configuration, virtual host and route, per cluster and its policies, per endpoint set.
Reordering that changes nothing served is no difference; a route order change that changes
which rule wins is.

--to defaults to the work tree of a local --repo (HEAD of a URL). --live ADMIN_URL compares
what a running gitxds serves (GET ADMIN_URL/snapshot, or ADMIN_URL as given when it names
/snapshot, e.g. with ?node=ID) with --to; both sides then go through the merged form of
GET /snapshot, in which a cluster of the same name in both node classes appears once.

-o json follows the schema gitxds.dev/diff/v1 (docs/preview-workflow.md). Exit codes: 0, also
when there are differences, unless --exit-code is given: then 1 when there are differences;
1 when a revision cannot be rendered; 2 on usage or I/O errors.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			switch outp {
			case "text", "markdown", "json":
			default:
				return usage(c, "-o %q: want text, markdown or json", outp)
			}
			if (from == "") == (live == "") {
				return usage(c, "give exactly one of --from and --live")
			}
			if to == "" {
				to = f.ref
			}
			var rep *diff.Report
			var err error
			if live != "" {
				rep, err = diffLive(c, &f, live, to)
			} else {
				rep, err = diffRevisions(c, &f, from, to)
			}
			if err != nil {
				return err
			}
			if err := writeReport(c.OutOrStdout(), rep, outp); err != nil {
				return ioErr(err)
			}
			if exitCode && rep.Different {
				return &exitError{code: exitInvalid, err: fmt.Errorf("%d difference(s)", len(rep.Changes))}
			}
			return nil
		},
	}
	f.register(c)
	_ = c.Flags().MarkHidden("ref") // --to says it
	c.Flags().StringVar(&from, "from", "", "revision to compare from: branch, tag, SHA or refs/pull/N/head")
	c.Flags().StringVar(&to, "to", "", "revision to compare to (default: the work tree of a local --repo, HEAD of a URL)")
	c.Flags().StringVar(&live, "live", "", "compare a running server's GET /snapshot (admin URL) with --to, instead of --from")
	c.Flags().StringVarP(&outp, "output", "o", "text", "text, markdown or json")
	c.Flags().BoolVar(&exitCode, "exit-code", false, "exit 1 when there are differences")
	return c
}

func usage(c *cobra.Command, format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format+"\n\n%s", append(args, c.UsageString())...)}
}

func writeReport(w io.Writer, rep *diff.Report, format string) error {
	switch format {
	case "json":
		return rep.WriteJSON(w)
	case "markdown":
		return rep.WriteMarkdown(w)
	}
	return rep.WriteText(w)
}

// diffRevisions builds from, then to as serve would build it after from
// (an object rejected in to keeps its version of from), and diffs them.
func diffRevisions(c *cobra.Command, f *repoFlags, from, to string) (*diff.Report, error) {
	base, err := f.build(c.Context(), from)
	if err != nil {
		return nil, err
	}
	head, err := f.buildAfter(c.Context(), to, base.Model.Memory())
	if err != nil {
		return nil, err
	}
	printRejected(c, head)
	rep := diff.Snapshots(base.Set, head.Set)
	rep.Owners(base.Model.IR, head.Model.IR)
	rep.Objects = diff.ObjectChanges(renderedObjects(base), renderedObjects(head), head.Model.Status)
	rep.NotAccepted = notAccepted(head)
	return rep, nil
}

// notAccepted lists the objects of b that are not fully accepted, nil if
// none.
func notAccepted(b *pipeline.Result) []diff.Problem {
	ps := diff.Problems(b.Model.Status)
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// diffLive fetches a running server's snapshot and diffs it with --to.
func diffLive(c *cobra.Command, f *repoFlags, adminURL, to string) (*diff.Report, error) {
	u, err := snapshotURL(adminURL)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	type fetched struct {
		set *snapshot.Set
		err error
	}
	livec := make(chan fetched, 1)
	go func() {
		s, err := fetchSnapshot(c.Context(), u)
		livec <- fetched{s, err}
	}()
	// What the server keeps of the objects it serves: the head is built as
	// the server would build it, an object rejected there keeping what is
	// served now.
	mem, err := fetchMemory(c.Context(), u)
	if errors.Is(err, errNoMemory) {
		fmt.Fprintf(c.ErrOrStderr(), "warning: %v: the head is built without the server's last accepted versions\n", err)
	} else if err != nil {
		<-livec
		return nil, ioErr(err)
	}
	b, err := f.buildAfter(c.Context(), to, mem)
	lv := <-livec
	if err != nil {
		return nil, err
	}
	if lv.err != nil {
		return nil, ioErr(lv.err)
	}
	printRejected(c, b)
	head := b.Set
	if u.Query().Get("node") != "" {
		// The server printed one node's class only, of its proxy group
		// (under "groups" for a named one): compare that class of that
		// group.
		group := snapshot.DefaultGroup
		if gs := lv.set.GroupNames(); len(gs) == 1 {
			group = gs[0]
			lv.set = lv.set.In(group)
		}
		cl := liveClass(lv.set)
		head = snapshot.New(head.Revision, map[snapshot.Class]*snapshot.Resources{cl: head.In(group).Of(cl)})
	}
	js, err := snapshot.RenderJSON(head)
	if err != nil {
		return nil, err
	}
	merged, err := snapshot.ParseRenderJSON(js)
	if err != nil {
		return nil, err
	}
	rep := diff.Snapshots(lv.set, merged)
	rep.Owners(b.Model.IR)
	rep.NotAccepted = notAccepted(b)
	return rep, nil
}

// errNoMemory: the server has no GET /accepted (an older gitxds).
var errNoMemory = errors.New("the server does not serve GET /accepted")

// fetchMemory gets GET /accepted of the admin API whose /snapshot is u.
func fetchMemory(ctx context.Context, snap *url.URL) (*model.Memory, error) {
	u := *snap
	u.Path = strings.TrimSuffix(u.Path, "/snapshot") + "/accepted"
	u.RawQuery = ""
	body, code, err := liveGet(ctx, &u, "live accepted objects")
	if err != nil {
		return nil, err
	}
	if code == http.StatusNotFound {
		return nil, fmt.Errorf("%s: %w", &u, errNoMemory)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("live accepted objects %s: %d %s: %s", &u, code, http.StatusText(code), strings.TrimSpace(string(body)))
	}
	var m model.Memory
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("live accepted objects %s: %w", &u, err)
	}
	return &m, nil
}

// liveGet reads GET u of a running server's admin API (at most 512 MiB,
// 30 s); what names the request in errors.
func liveGet(ctx context.Context, u *url.URL, what string) (body []byte, code int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if body, err = io.ReadAll(io.LimitReader(resp.Body, 512<<20)); err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", what, u, err)
	}
	return body, resp.StatusCode, nil
}

// snapshotURL is ADMIN_URL/snapshot, or ADMIN_URL when it names /snapshot.
func snapshotURL(admin string) (*url.URL, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--live %q: want an http(s) URL of the admin API", admin)
	}
	if !strings.HasSuffix(u.Path, "/snapshot") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/snapshot"
	}
	return u, nil
}

func fetchSnapshot(ctx context.Context, u *url.URL) (*snapshot.Set, error) {
	body, code, err := liveGet(ctx, u, "live snapshot")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("live snapshot %s: %d %s: %s", u, code, http.StatusText(code), strings.TrimSpace(string(body)))
	}
	set, err := snapshot.ParseRenderJSON(body)
	if err != nil {
		return nil, fmt.Errorf("live snapshot %s: %w", u, err)
	}
	return set, nil
}

// liveClass tells the class of a one-node snapshot: gRPC when it has API
// listeners and no socket listener; an Envoy node with scoped routes is of
// the scoped class (the only one with scoped routes unless a Gateway asks
// every Envoy for them, when both classes serve them alike).
func liveClass(s *snapshot.Set) snapshot.Class {
	if r := s.Classes[snapshot.GRPC]; r != nil && len(r.Listeners) > 0 && len(s.Classes[snapshot.Envoy].Listeners) == 0 {
		return snapshot.GRPC
	}
	if len(s.Classes[snapshot.Envoy].ScopedRoutes) > 0 {
		return snapshot.EnvoyScoped
	}
	return snapshot.Envoy
}
