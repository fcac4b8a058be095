package model

import (
	"crypto/tls"
	"fmt"
)

// Cluster is what gitxds knows of the objects of the Kubernetes cluster
// that are not configuration: the Secrets HTTPS listeners name and the
// Services routes send to. They live in the cluster's API server, not in
// the repository. When Input.Cluster is nil (the offline commands, serve
// without it) the model cannot tell whether they exist and says so in
// status instead of guessing.
type Cluster interface {
	// Secret returns the data of Secret namespace/name and whether the
	// API server has it.
	Secret(namespace, name string) (data map[string][]byte, found bool)
	// Service returns the ports of Service namespace/name (spec.ports[]:
	// port by name, "" for an unnamed one) and whether the API server has
	// it.
	Service(namespace, name string) (ports map[string]int32, found bool)
}

// Keys of a kubernetes.io/tls Secret.
const (
	secretCertKey = "tls.crt"
	secretKeyKey  = "tls.key"
)

// checkCertificateSecret checks, when the cluster is known, that Secret
// ns/name exists and holds a certificate and key that form a pair (what a
// proxy reads from the mounted Secret's tls.crt and tls.key); it returns
// why not, or "".
func (b *builder) checkCertificateSecret(ns, name string) string {
	if b.cluster == nil {
		return ""
	}
	data, ok := b.cluster.Secret(ns, name)
	if !ok {
		return fmt.Sprintf("Secret %s/%s does not exist", ns, name)
	}
	crt, key := data[secretCertKey], data[secretKeyKey]
	if len(crt) == 0 || len(key) == 0 {
		return fmt.Sprintf("Secret %s/%s has no %s and %s", ns, name, secretCertKey, secretKeyKey)
	}
	if _, err := tls.X509KeyPair(crt, key); err != nil {
		return fmt.Sprintf("Secret %s/%s does not hold a valid certificate and key: %v", ns, name, err)
	}
	return ""
}

// certificatesNote says, on a listener's ResolvedRefs, how far gitxds
// checked its certificates.
func (b *builder) certificatesNote() string {
	if b.cluster == nil {
		return "all references resolved; the certificates are read as files on the proxy hosts and not checked by the control plane (no Kubernetes API access)"
	}
	return "all references resolved; each certificate Secret exists in the Kubernetes API and holds a valid tls.crt and tls.key"
}
