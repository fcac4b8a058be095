package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/layout"
	"gitxds.dev/gitxds/reconciler/status"
)

// What `gitxds get` can list, Flux-style, from a running serve's admin API.
var getKinds = []string{"revisions", "objects", "routes", "nodes", "rollout"}

type getFlags struct {
	admin  adminClient
	output string
	watch  bool
	team   string
}

func newGet() *cobra.Command {
	var f getFlags
	c := &cobra.Command{
		Use:   "get revisions|objects|routes|nodes|rollout [--team T] [-w] [-o table|json|yaml]",
		Short: "List what a running gitxds serve knows: revisions, objects, routes, nodes, the rollout",
		Long: `get reads the admin API of a running server and prints a table, the way flux get does:

  revisions  the last revisions attempted: result (pending, success, failure), reason, stage, duration
  objects    every object of the last attempted revision: READY, file, reason
  routes     the HTTPRoutes and GRPCRoutes among them
  nodes      the connected nodes: class, labels, rollout stage, what they are served
  rollout    the rollout in progress or last finished

--team keeps one team's objects and routes; -w follows changes.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: getKinds,
		RunE: func(c *cobra.Command, args []string) error {
			return f.run(c, args[0])
		},
	}
	f.register(c)
	return c
}

func newHistory() *cobra.Command {
	var f getFlags
	c := &cobra.Command{
		Use:   "history [-o table|json|yaml]",
		Short: "The last revisions a running gitxds serve attempted, applied or refused (persisted)",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return f.run(c, "revisions") },
	}
	f.register(c)
	return c
}

func (f *getFlags) register(c *cobra.Command) {
	f.admin.register(c)
	c.Flags().StringVarP(&f.output, "output", "o", "table", "table, json or yaml")
	c.Flags().BoolVarP(&f.watch, "watch", "w", false, "print again whenever it changes")
	c.Flags().StringVar(&f.team, "team", "", "only this team's (namespace's) objects and routes")
	_ = c.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp
	})
}

func (f *getFlags) run(c *cobra.Command, kind string) error {
	switch f.output {
	case "table", "json", "yaml":
	default:
		return &exitError{code: exitUsage, err: fmt.Errorf("-o %q: want table, json or yaml", f.output)}
	}
	ctx := c.Context()
	last := ""
	for {
		var b bytes.Buffer
		if err := f.print(ctx, &b, kind); err != nil {
			return err
		}
		if b.String() != last {
			if last != "" && f.output == "table" {
				fmt.Fprintf(c.OutOrStdout(), "--- %s\n", time.Now().Format("15:04:05"))
			}
			c.OutOrStdout().Write(b.Bytes())
			last = b.String()
		}
		if !f.watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// getJSON decodes GET path of the admin API into v.
func (a *adminClient) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url(path), nil)
	if err != nil {
		return ioErr(err)
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return ioErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ioErr(fmt.Errorf("GET %s: %s", path, resp.Status))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return ioErr(fmt.Errorf("GET %s: %w", path, err))
	}
	return nil
}

type nodeRow struct {
	ID     string            `json:"id"`
	Class  string            `json:"class"`
	Labels map[string]string `json:"labels,omitempty"`
	Served string            `json:"served,omitempty"`
	Stage  string            `json:"stage,omitempty"`
}

func (f *getFlags) print(ctx context.Context, w io.Writer, kind string) error {
	var data any
	var header []string
	var rows [][]string
	switch kind {
	case "revisions":
		var h []status.Revision
		if err := f.admin.getJSON(ctx, "/history", &h); err != nil {
			return err
		}
		data, header = h, []string{"REVISION", "RESULT", "REASON", "STAGE", "DURATION", "MESSAGE"}
		for _, r := range h {
			rows = append(rows, []string{r.Revision, r.Result, r.Reason, r.Stage, r.Duration, r.Message})
		}
	case "objects", "routes":
		st, err := f.admin.status(ctx)
		if err != nil {
			return err
		}
		var objs []status.Object
		for _, o := range st.Objects {
			if f.team != "" && o.Namespace != f.team && layout.Of(o.File).Team != f.team {
				continue
			}
			if kind == "routes" && o.Kind != "HTTPRoute" && o.Kind != "GRPCRoute" {
				continue
			}
			objs = append(objs, o)
		}
		data, header = objs, []string{"READY", "OBJECT", "FILE", "REASON", "MESSAGE"}
		for _, o := range objs {
			ready, reason, msg := "True", "Accepted", o.ServingLastAccepted
			if c := status.Problem(o); c != nil {
				ready, reason, msg = "False", c.Reason, c.Message
				if o.ServingLastAccepted != "" {
					msg += " (" + o.ServingLastAccepted + ")"
				}
			}
			if o.PatchedByOverlay != "" {
				msg = strings.TrimSpace(msg + " (patched by " + o.PatchedByOverlay + ")")
			}
			rows = append(rows, []string{ready, o.ObjectRef.String(), o.File, reason, msg})
		}
	case "nodes":
		var nodes []nodeRow
		if err := f.admin.getJSON(ctx, "/nodes", &nodes); err != nil {
			return err
		}
		st, err := f.admin.status(ctx)
		if err != nil {
			return err
		}
		stage := map[string]string{}
		if st.Rollout != nil {
			for _, s := range st.Rollout.Stages {
				for _, n := range s.Nodes {
					stage[n] = s.Name
				}
			}
		}
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
		header = []string{"NODE", "CLASS", "LABELS", "STAGE", "SERVED"}
		for i := range nodes {
			nodes[i].Stage = stage[nodes[i].ID]
			var labels []string
			for k, v := range nodes[i].Labels {
				labels = append(labels, k+"="+v)
			}
			sort.Strings(labels)
			rows = append(rows, []string{nodes[i].ID, nodes[i].Class, strings.Join(labels, ","), nodes[i].Stage, nodes[i].Served})
		}
		data = nodes
	case "rollout":
		st, err := f.admin.status(ctx)
		if err != nil {
			return err
		}
		if f.output == "table" {
			printRollout(w, st, time.Now())
			return nil
		}
		data = st.Rollout
	default:
		return &exitError{code: exitUsage, err: fmt.Errorf("unknown kind %q: want one of %s", kind, strings.Join(getKinds, ", "))}
	}
	switch f.output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(data)
	case "yaml":
		b, err := yaml.Marshal(data)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
