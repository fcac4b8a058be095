package rollout

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"gitxds.dev/gitxds/reconciler/status"
)

// QueryData is what a metric query template sees.
type QueryData struct {
	// Nodes is the stage's node ids, comma-separated.
	Nodes string
	// NodeRegex matches exactly the stage's node ids, escaped for a PromQL
	// double-quoted string: node=~"{{ .NodeRegex }}".
	NodeRegex string
	Stage     string
	Revision  string
}

// NewQueryData builds the template data for a stage's nodes.
func NewQueryData(nodes []string, stage, revision string) QueryData {
	quoted := make([]string, len(nodes))
	for i, n := range nodes {
		// RE2 escape, then PromQL string escape of the backslashes.
		quoted[i] = strings.ReplaceAll(regexp.QuoteMeta(n), `\`, `\\`)
	}
	re := strings.Join(quoted, "|")
	if re == "" {
		re = "$^" // matches no node
	}
	return QueryData{Nodes: strings.Join(nodes, ","), NodeRegex: re, Stage: stage, Revision: revision}
}

// Querier evaluates PromQL; the Prometheus HTTP API in production.
type Querier interface {
	Query(ctx context.Context, q string) (float64, error)
}

// PromQuerier queries a Prometheus server's HTTP API.
type PromQuerier struct{ api promv1.API }

// NewPromQuerier returns a Querier for a Prometheus base address.
func NewPromQuerier(address string) (*PromQuerier, error) {
	c, err := promapi.NewClient(promapi.Config{Address: address})
	if err != nil {
		return nil, err
	}
	return &PromQuerier{api: promv1.NewAPI(c)}, nil
}

// Query returns the single value of an instant query. An empty result is 0:
// `sum(rate(errors[1m]))` over no error series is no error at all. A result
// with several series is an error: a gate must reduce to one number.
func (p *PromQuerier) Query(ctx context.Context, q string) (float64, error) {
	v, _, _, err := p.api.Query(ctx, q, time.Now())
	if err != nil {
		return 0, err
	}
	switch v := v.(type) {
	case *model.Scalar:
		return float64(v.Value), nil
	case model.Vector:
		switch len(v) {
		case 0:
			return 0, nil
		case 1:
			return float64(v[0].Value), nil
		default:
			return 0, fmt.Errorf("query returned %d series, want one (aggregate it, e.g. with sum())", len(v))
		}
	default:
		return 0, fmt.Errorf("query returned a %s, want a scalar or an instant vector", v.Type())
	}
}

// evalGates runs every metric of the policy once. failed is set when a value
// is out of bounds; queryErr when a query could not be evaluated.
func evalGates(ctx context.Context, q Querier, p *Policy, data QueryData) (vals []status.GateValue, failed *status.GateValue, queryErr error) {
	for _, m := range p.Metrics {
		gv := status.GateValue{Name: m.Name, Min: m.Min, Max: m.Max}
		var buf bytes.Buffer
		if err := m.Template.Execute(&buf, data); err != nil {
			gv.Error = err.Error()
			vals = append(vals, gv)
			queryErr = fmt.Errorf("metric %s: %w", m.Name, err)
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := q.Query(qctx, buf.String())
		cancel()
		if err != nil {
			gv.Error = err.Error()
			vals = append(vals, gv)
			queryErr = fmt.Errorf("metric %s: %w", m.Name, err)
			continue
		}
		gv.Value = &v
		gv.OK = !math.IsNaN(v) && (m.Min == nil || v >= *m.Min) && (m.Max == nil || v <= *m.Max)
		vals = append(vals, gv)
		if !gv.OK && failed == nil {
			f := gv
			failed = &f
		}
	}
	return vals, failed, queryErr
}

func bounds(g status.GateValue) string {
	var parts []string
	if g.Min != nil {
		parts = append(parts, fmt.Sprintf("min %g", *g.Min))
	}
	if g.Max != nil {
		parts = append(parts, fmt.Sprintf("max %g", *g.Max))
	}
	return strings.Join(parts, ", ")
}
