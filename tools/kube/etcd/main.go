// Command etcd is the upstream etcd server (go.etcd.io/etcd/server/v3, at
// the version tools/kube/go.mod pins): the storage of the kube-apiserver
// that testenv/kubeapi starts for tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
