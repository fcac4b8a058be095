package dataplane

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The data plane answers one query of the Prometheus HTTP API itself, for
// when no Prometheus is installed (the demo): the error ratio of a set of
// nodes over a window, computed from the calls it made. It is the same
// PromQL a real Prometheus scraping /metrics answers, so a RolloutPolicy's
// metric gate reads the same number from either.

// ErrorRatioQuery is the PromQL of the share of failed calls of the nodes
// whose id matches nodeRegex (a PromQL double-quoted string's content, e.g.
// "{{ .NodeRegex }}" in a RolloutPolicy) over the last window (whole
// seconds).
func ErrorRatioQuery(nodeRegex string, window time.Duration) string {
	w := fmt.Sprintf("%ds", int(window/time.Second))
	return `sum(rate(` + MetricName + `{code_class="5xx",node=~"` + nodeRegex + `"}[` + w + `]))` +
		` / sum(rate(` + MetricName + `{node=~"` + nodeRegex + `"}[` + w + `]))`
}

// errorRatioRE parses what ErrorRatioQuery writes.
var errorRatioRE = regexp.MustCompile(`^sum\(rate\(` + regexp.QuoteMeta(MetricName) + `\{code_class="5xx",node=~"((?:[^"\\]|\\.)*)"\}\[(\d+)s\]\)\) / sum\(rate\(` +
	regexp.QuoteMeta(MetricName) + `\{node=~"((?:[^"\\]|\\.)*)"\}\[(\d+)s\]\)\)$`)

// observation is one call, kept for the query API.
type observation struct {
	at     time.Time
	node   string
	failed bool
}

// keepObservations bounds how far back the query API can look.
const keepObservations = 5 * time.Minute

func (m *Metrics) record(node string, failed bool) {
	now := time.Now()
	m.obsMu.Lock()
	defer m.obsMu.Unlock()
	m.obs = append(m.obs, observation{at: now, node: node, failed: failed})
	// Forget what is older than keepObservations (amortised: only when
	// the oldest is more than twice as old).
	if len(m.obs) > 0 && now.Sub(m.obs[0].at) > 2*keepObservations {
		i := 0
		for i < len(m.obs) && now.Sub(m.obs[i].at) > keepObservations {
			i++
		}
		m.obs = append(m.obs[:0], m.obs[i:]...)
	}
}

// ErrorRatio is the share of failed calls of the nodes nodeRE matches
// (anchored) in the window before now, and how many calls there were.
func (m *Metrics) ErrorRatio(nodeRE *regexp.Regexp, window time.Duration, now time.Time) (ratio float64, calls int) {
	m.obsMu.Lock()
	defer m.obsMu.Unlock()
	failed := 0
	for _, o := range m.obs {
		if o.at.After(now) || now.Sub(o.at) > window || !nodeRE.MatchString(o.node) {
			continue
		}
		calls++
		if o.failed {
			failed++
		}
	}
	if calls == 0 {
		return 0, 0
	}
	return float64(failed) / float64(calls), calls
}

// queryAPI answers GET or POST /api/v1/query for ErrorRatioQuery, in the
// Prometheus HTTP API's format: an instant vector of one sample, or of
// none when the nodes made no call in the window (as rate() over no sample
// gives none). Any other query is a bad_data error.
func (m *Metrics) queryAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fail := func(code int, typ, msg string) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": typ, "error": msg})
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	q := strings.TrimSpace(r.Form.Get("query"))
	p := errorRatioRE.FindStringSubmatch(q)
	if p == nil || p[1] != p[3] || p[2] != p[4] {
		fail(http.StatusBadRequest, "bad_data", "this data plane answers only its error ratio: "+ErrorRatioQuery("<node regex>", 5*time.Second))
		return
	}
	// PromQL string escapes, then an anchored RE2 as Prometheus' =~ is.
	re, err := regexp.Compile("^(?:" + strings.ReplaceAll(p[1], `\\`, `\`) + ")$")
	if err != nil {
		fail(http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	secs, _ := strconv.Atoi(p[2])
	now := time.Now()
	if t := r.Form.Get("time"); t != "" {
		if f, err := strconv.ParseFloat(t, 64); err == nil {
			now = time.Unix(0, int64(f*float64(time.Second)))
		}
	}
	ratio, calls := m.ErrorRatio(re, time.Duration(secs)*time.Second, now)
	result := []any{}
	if calls > 0 {
		ts := float64(now.UnixMilli()) / 1000
		result = append(result, map[string]any{"metric": map[string]string{}, "value": []any{ts, strconv.FormatFloat(ratio, 'g', -1, 64)}})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
}

// QueryURL is the base address a RolloutPolicy's
// spec.analysis.prometheus.address gives to query this data plane.
func (m *Metrics) QueryURL() string { return "http://" + m.Addr() }
