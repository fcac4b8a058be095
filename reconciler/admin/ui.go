package admin

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/status"
)

// The live view, GET /ui: server-rendered HTML of the status, with a small
// script (ui/ui.js) that fetches GET /ui/live (the page's main element)
// every second and swaps it in. No external assets; the content security
// policy allows nothing but this origin's script and style.

//go:embed ui
var uiFiles embed.FS

var uiTemplate = template.Must(template.New("ui.html").Funcs(template.FuncMap{
	"since": func(t time.Time) string { return time.Since(t).Round(time.Second).String() + " ago" },
	"num": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return fmt.Sprintf("%.4g", *f)
	},
	"lower": strings.ToLower,
}).ParseFS(uiFiles, "ui/ui.html"))

const uiCSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiView is what the page shows.
type uiView struct {
	Status     status.Status
	Ready      *metav1.Condition
	Stages     []uiStage
	Rejected   []uiProblem
	Held       []status.Object
	Nodes      []uiNode
	NodesByKey []uiCount
	// History: the last revisions, newest first.
	History []status.Revision
	Now     time.Time
}

type uiStage struct {
	status.Stage
	Acked, Total int
	// BakeLeft is the bake time left, for a stage that bakes.
	BakeLeft string
}

type uiProblem struct {
	Object, File, Reason, Message string
}

type uiNode struct {
	ID, Class, Labels, Served, Stage string
}

type uiCount struct {
	Key string
	N   int
}

func (a *api) uiView() uiView {
	st := a.o.Backend.Status()
	v := uiView{Status: st, Ready: st.Get(status.Ready), Now: time.Now()}
	stageOf := map[string]string{}
	if ro := st.Rollout; ro != nil {
		for _, s := range ro.Stages {
			us := uiStage{Stage: s, Acked: s.Acked, Total: s.Total()}
			if s.Phase == status.StageBaking && s.StartedAt != nil && s.Bake != "" {
				if d, err := time.ParseDuration(s.Bake); err == nil {
					// The bake starts when every node ACKed; StartedAt is
					// the stage's start, so this is an upper bound.
					left := time.Until(s.StartedAt.Add(d)).Round(time.Second)
					us.BakeLeft = max(left, 0).String()
				}
			}
			v.Stages = append(v.Stages, us)
			for _, n := range s.Nodes {
				stageOf[n] = s.Name
			}
		}
	}
	if h, ok := a.o.Backend.(historian); ok {
		revs := h.History()
		for i := len(revs) - 1; i >= 0 && len(v.History) < 20; i-- {
			v.History = append(v.History, revs[i])
		}
	}
	for _, o := range status.Rejected(st.Objects) {
		c := status.Problem(o)
		v.Rejected = append(v.Rejected, uiProblem{Object: o.ObjectRef.String(), File: o.File, Reason: c.Reason, Message: c.Message})
	}
	for _, o := range st.Objects {
		if o.ServingLastAccepted != "" && o.Accepted() {
			v.Held = append(v.Held, o)
		}
	}
	if a.o.Fleet != nil {
		var nodes []struct {
			ID     string            `json:"id"`
			Class  string            `json:"class"`
			Labels map[string]string `json:"labels"`
			Served string            `json:"served"`
		}
		if b, err := json.Marshal(a.o.Fleet.NodesJSON()); err == nil {
			_ = json.Unmarshal(b, &nodes)
		}
		count := map[string]int{}
		for _, n := range nodes {
			var labels []string
			for k, val := range n.Labels {
				labels = append(labels, k+"="+val)
			}
			sort.Strings(labels)
			stage := stageOf[n.ID]
			v.Nodes = append(v.Nodes, uiNode{ID: n.ID, Class: n.Class, Labels: strings.Join(labels, ", "), Served: n.Served, Stage: stage})
			if stage == "" {
				stage = "–"
			}
			count[n.Class+" / "+stage]++
		}
		sort.Slice(v.Nodes, func(i, j int) bool { return v.Nodes[i].ID < v.Nodes[j].ID })
		for k, n := range count {
			v.NodesByKey = append(v.NodesByKey, uiCount{k, n})
		}
		sort.Slice(v.NodesByKey, func(i, j int) bool { return v.NodesByKey[i].Key < v.NodesByKey[j].Key })
	}
	return v
}

func (a *api) ui(w http.ResponseWriter, r *http.Request) {
	name := "page"
	if r.URL.Path == "/ui/live" {
		name = "main"
	}
	var b bytes.Buffer
	if err := uiTemplate.ExecuteTemplate(&b, name, a.uiView()); err != nil {
		a.o.Log.Error("rendering /ui", "error", err)
		http.Error(w, "cannot render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", uiCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

func (a *api) uiAsset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	data, err := uiFiles.ReadFile("ui/" + name)
	if err != nil || (name != "ui.js" && name != "ui.css") {
		http.NotFound(w, r)
		return
	}
	ct := "text/css; charset=utf-8"
	if strings.HasSuffix(name, ".js") {
		ct = "text/javascript; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(data)
}
