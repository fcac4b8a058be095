// Package metrics defines gitxds's Prometheus metrics. Every name has the
// gitxds_ prefix; the README lists them.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics of one gitxds process. Create one per process with New; tests get
// their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	StageDuration   *prometheus.HistogramVec // stage
	Reconciles      *prometheus.CounterVec   // result
	Failures        *prometheus.CounterVec   // reason
	RevisionInfo    *prometheus.GaugeVec     // kind (attempted|applied), revision
	NodesConnected  *prometheus.GaugeVec     // class
	XDSResponses    *prometheus.CounterVec   // type, result (ack|nack)
	RolloutStage    *prometheus.GaugeVec     // revision, stage
	Rollouts        *prometheus.CounterVec   // result
	RejectedObjects prometheus.Gauge
	Webhooks        *prometheus.CounterVec // provider, result
	Notifications   *prometheus.CounterVec // provider, result
}

// New registers every gitxds metric, plus the Go and process collectors, on a
// new registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		StageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gitxds_reconcile_stage_duration_seconds",
			Help:    "Duration of each pipeline stage of a reconcile (source, render, model, translate, diff).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"stage"}),
		Reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitxds_reconciles_total",
			Help: "Reconciles by result (unchanged, applied, rolling_out, rejected, failed).",
		}, []string{"result"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitxds_failures_total",
			Help: "Failures by reason (SourceFailed, BuildFailed, TranslateFailed, RolloutFailed).",
		}, []string{"reason"}),
		RevisionInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitxds_revision_info",
			Help: "The last attempted and last applied revision (value 1).",
		}, []string{"kind", "revision"}),
		NodesConnected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitxds_nodes_connected",
			Help: "xDS nodes connected, by class (envoy, grpc).",
		}, []string{"class"}),
		XDSResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitxds_xds_acks_total",
			Help: "ACKs and NACKs received from nodes, by resource type.",
		}, []string{"type", "result"}),
		RolloutStage: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitxds_rollout_stage",
			Help: "Index of the rollout stage in progress (-1 when none).",
		}, []string{}),
		Rollouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitxds_rollouts_total",
			Help: "Finished rollouts by result (Succeeded, Failed, Superseded, Aborted).",
		}, []string{"result"}),
		RejectedObjects: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitxds_rejected_objects",
			Help: "Objects of the last attempted revision that were rejected.",
		}),
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitxds_webhook_deliveries_total",
			Help: "Webhook deliveries by provider and result.",
		}, []string{"provider", "result"}),
		Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitxds_notifications_total",
			Help: "Notifications (--notify-config) by provider and result (delivered, failed, dropped).",
		}, []string{"provider", "result"}),
	}
	r.MustRegister(m.StageDuration, m.Reconciles, m.Failures, m.RevisionInfo, m.NodesConnected,
		m.XDSResponses, m.RolloutStage, m.Rollouts, m.RejectedObjects, m.Webhooks, m.Notifications,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.RolloutStage.WithLabelValues().Set(-1)
	return m
}

// SetRevision records the attempted or applied revision, dropping the old one.
func (m *Metrics) SetRevision(kind, revision string) {
	m.RevisionInfo.DeletePartialMatch(prometheus.Labels{"kind": kind})
	if revision != "" {
		m.RevisionInfo.WithLabelValues(kind, revision).Set(1)
	}
}
