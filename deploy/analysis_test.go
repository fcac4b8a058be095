package deploy

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/testenv/prom"
)

// fakeEnvoy serves /stats/prometheus as Envoy's admin does (metric and tag
// names as Envoy's tag extractors produce them: source/common/config/
// well_known_names.cc, and PrometheusStatsFormatter::metricName prefixes
// "envoy_"). Each scrape adds completed requests, of which fiveXX were
// answered 5xx, on the Gateway listener port-8080; the stats listener's
// own requests and failed connections to the gitxds cluster grow too, and
// the analysis must not count them.
type fakeEnvoy struct {
	mu                      sync.Mutex
	perScrape, fiveXX       int
	completed, errors, self int
}

func (f *fakeEnvoy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stats/prometheus" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	f.completed += f.perScrape
	f.errors += f.fiveXX
	f.self += 100
	c, e, s := f.completed, f.errors, f.self
	f.mu.Unlock()
	fmt.Fprintf(w, `# TYPE envoy_http_downstream_rq_completed counter
envoy_http_downstream_rq_completed{envoy_http_conn_manager_prefix="port-8080"} %d
envoy_http_downstream_rq_completed{envoy_http_conn_manager_prefix="stats"} %d
# TYPE envoy_http_downstream_rq_xx counter
envoy_http_downstream_rq_xx{envoy_response_code_class="2",envoy_http_conn_manager_prefix="port-8080"} %d
envoy_http_downstream_rq_xx{envoy_response_code_class="5",envoy_http_conn_manager_prefix="port-8080"} %d
envoy_http_downstream_rq_xx{envoy_response_code_class="2",envoy_http_conn_manager_prefix="stats"} %d
# TYPE envoy_cluster_upstream_cx_connect_fail counter
envoy_cluster_upstream_cx_connect_fail{envoy_cluster_name="gitxds"} %d
envoy_cluster_upstream_cx_connect_fail{envoy_cluster_name="payments_payments-v1"} 0
`, c, s, c-e, e, s, s)
}

// The production RolloutPolicy's analysis, evaluated by real Prometheus
// scraping two Envoys through deploy/prometheus/scrape-envoy.yaml's
// relabelling (its Kubernetes discovery replaced by static targets with the
// same __meta labels): each stage's queries see that stage's Envoys only,
// the canary's 5xx fail its gate, the stable Envoy's stage passes, and no
// traffic is 0, not NaN.
func TestProductionAnalysisOnEnvoyStats(t *testing.T) {
	promBin := prom.Require(t)
	pol := productionPolicy(t)
	if pol.Prometheus == "" || len(pol.Metrics) == 0 {
		t.Fatal("the production RolloutPolicy has no analysis")
	}
	pods := map[string]*fakeEnvoy{
		"envoy-edge-canary-7c9d5b6f4-abcde": {perScrape: 10, fiveXX: 5},
		"envoy-edge-stable-6b8c4d7f5-fghij": {perScrape: 10},
		"envoy-edge-stable-6b8c4d7f5-klmno": {}, // no traffic
	}
	var targets []any
	for pod, f := range pods {
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		group := strings.Split(strings.TrimPrefix(pod, "envoy-edge-"), "-")[0]
		targets = append(targets, map[string]any{
			"targets": []string{strings.TrimPrefix(srv.URL, "http://")},
			"labels": map[string]string{
				"__meta_kubernetes_namespace":                          "gitxds-system",
				"__meta_kubernetes_pod_name":                           pod,
				"__meta_kubernetes_pod_label_app_kubernetes_io_name":   "envoy-edge",
				"__meta_kubernetes_pod_label_gitxds_dev_rollout_group": group,
				"__meta_kubernetes_pod_container_port_name":            "stats",
			},
		})
	}
	raw, err := os.ReadFile("prometheus/scrape-envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	job := list(cfg, "scrape_configs")[0].(map[string]any)
	delete(job, "kubernetes_sd_configs")
	job["static_configs"] = targets
	job["scrape_interval"] = "1s"
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := prom.StartT(t, prom.Options{Binary: promBin, Config: string(out)})
	q, err := rollout.NewPromQuerier(srv.URL)
	if err != nil {
		t.Fatal(err)
	}

	eval := func(nodes ...string) map[string]float64 {
		t.Helper()
		vals := map[string]float64{}
		data := rollout.NewQueryData(nodes, "stage", "main@sha1:1")
		for _, m := range pol.Metrics {
			var buf bytes.Buffer
			if err := m.Template.Execute(&buf, data); err != nil {
				t.Fatal(err)
			}
			v, err := q.Query(context.Background(), buf.String())
			if err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
			vals[m.Name] = v
		}
		return vals
	}
	pass := func(vals map[string]float64) bool {
		for _, m := range pol.Metrics {
			v := vals[m.Name]
			if math.IsNaN(v) || (m.Min != nil && v < *m.Min) || (m.Max != nil && v > *m.Max) {
				return false
			}
		}
		return true
	}

	canary := "envoy-edge-canary-7c9d5b6f4-abcde"
	// rate() needs two samples of the canary's counters.
	deadline := time.Now().Add(90 * time.Second)
	var got map[string]float64
	for time.Now().Before(deadline) {
		if got = eval(canary); got["http-5xx-ratio"] > 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r := got["http-5xx-ratio"]; math.Abs(r-0.5) > 0.01 {
		t.Fatalf("canary stage: http-5xx-ratio %v; want 0.5 (5 of every 10 Gateway requests; the stats listener's not counted)", got)
	}
	if pass(got) {
		t.Errorf("canary stage %v passes its gates", got)
	}
	var stable []string
	for pod := range pods {
		if strings.Contains(pod, "stable") {
			stable = append(stable, pod)
		}
	}
	if got := eval(stable...); !pass(got) || got["http-5xx-ratio"] != 0 || got["upstream-connect-failures"] != 0 {
		t.Errorf("stable stage: %v; want 0 errors (the gitxds cluster's failures not counted) and passing gates", got)
	}
	if got := eval("envoy-edge-stable-6b8c4d7f5-klmno"); !pass(got) {
		t.Errorf("a stage without traffic: %v; want passing gates (0, not NaN)", got)
	}
}
