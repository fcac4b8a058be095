package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"gitxds.dev/gitxds/reconciler/model"
)

// Cluster holds the objects of a test that an API server holds, not Git:
// the Secrets and Services of its manifests and the Secrets the suite
// creates itself before the tests. It is the model.Cluster gitxds is given,
// as serve would be given the cluster's objects: listeners' certificate
// Secrets and Service backendRefs are checked against it.
type Cluster struct {
	secrets  map[string]map[string][]byte // "namespace/name"
	services map[string]map[string]int32  // ports by name
	// gwNS are the Gateways' original namespaces: Map moved their Gateways
	// to platform, and a Secret of such a namespace is found as
	// platform/<name> too, as a same-namespace certificateRef of the moved
	// Gateway names it.
	gwNS map[string]bool
}

var _ model.Cluster = (*Cluster)(nil)

func newCluster() *Cluster {
	return &Cluster{secrets: map[string]map[string][]byte{}, services: map[string]map[string]int32{}, gwNS: map[string]bool{}}
}

// Secret implements model.Cluster.
func (c *Cluster) Secret(ns, name string) (map[string][]byte, bool) {
	if ns == model.PlatformNamespace {
		for _, g := range sortedSet(c.gwNS) {
			if d, ok := c.secrets[g+"/"+name]; ok {
				return d, true
			}
		}
	}
	d, ok := c.secrets[ns+"/"+name]
	return d, ok
}

// Service implements model.Cluster.
func (c *Cluster) Service(ns, name string) (map[string]int32, bool) {
	p, ok := c.services[ns+"/"+name]
	return p, ok
}

// add records a Service or Secret of the manifests (data base64 as in a
// manifest, stringData as is).
func (c *Cluster) add(o obj) error {
	key := o.namespace() + "/" + o.name()
	switch o.kind() {
	case "Service":
		ports := map[string]int32{}
		ps, _ := o.m("spec")["ports"].([]any)
		for _, p := range ps {
			pm, _ := p.(map[string]any)
			if n, ok := pm["port"].(int); ok {
				ports[str(pm, "name")] = int32(n)
			}
		}
		c.services[key] = ports
	case "Secret":
		d := map[string][]byte{}
		for k, v := range o.m("data") {
			s, _ := v.(string)
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return fmt.Errorf("Secret %s: data %s: %w", key, k, err)
			}
			d[k] = b
		}
		for k, v := range o.m("stringData") {
			s, _ := v.(string)
			d[k] = []byte(s)
		}
		c.secrets[key] = d
	}
	return nil
}

// suiteSecrets are the Secrets the suite creates before the tests
// (ConformanceTestSuite.Setup, utils/suite/suite.go, with
// kubernetes.MustCreateSelfSignedCertSecret) that core tests name: a
// self-signed certificate and key in tls.crt and tls.key.
var suiteSecrets = []struct{ ns, name string }{
	{webNS, "certificate"},
	{infraNS, "tls-validity-checks-certificate"},
}

// addSuiteSecrets adds suiteSecrets, with a certificate made now.
func (c *Cluster) addSuiteSecrets() error {
	crt, key, err := selfSigned()
	if err != nil {
		return err
	}
	for _, s := range suiteSecrets {
		c.secrets[s.ns+"/"+s.name] = map[string][]byte{"tls.crt": crt, "tls.key": key}
	}
	return nil
}

// selfSigned returns a self-signed certificate for "*" and its key, in PEM.
func selfSigned() (crt, key []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gateway-conformance"},
		DNSNames:     []string{"*"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), nil
}
