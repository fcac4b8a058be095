// Command kube-apiserver is the upstream Kubernetes API server, built from
// k8s.io/kubernetes at the version tools/kube/go.mod pins. The tests in
// testenv/kubeapi start it on loopback against the etcd built beside it.
package main

import (
	"os"

	_ "time/tzdata" // time zones for CronJob, as upstream's main has

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // the JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go's metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
