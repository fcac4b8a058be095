// Package testcerts writes a throwaway PKI for tests: a CA, a server
// certificate for 127.0.0.1 and localhost, a client certificate signed by
// the CA (for node id edge-1: DNS SAN edge-1, URI SAN
// spiffe://gitxds.test/node/edge-1), and a client certificate signed by
// another CA.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// Files are the paths written.
type Files struct {
	CA                        string // CA certificate (PEM)
	ServerCert, ServerKey     string
	ClientCert, ClientKey     string // signed by CA
	RogueClientCert, RogueKey string // signed by another CA
	ServerName                string

	ca                    *authority
	clientPair, roguePair tls.Certificate
	caPool                *x509.CertPool
}

type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial atomic.Int64

func newAuthority(cn string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func (a *authority) issue(cn string, server bool, sans ...string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, san := range sans {
		if u, err := url.Parse(san); err == nil && u.Scheme != "" {
			tmpl.URIs = append(tmpl.URIs, u)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, san)
		}
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// Write generates the PKI into dir.
func Write(dir string) (*Files, error) {
	ca, err := newAuthority("gitxds test CA")
	if err != nil {
		return nil, err
	}
	other, err := newAuthority("some other CA")
	if err != nil {
		return nil, err
	}
	f := &Files{ServerName: "localhost", ca: ca}
	files := map[string][]byte{"ca.pem": ca.pem}
	sc, sk, err := ca.issue("gitxds", true)
	if err != nil {
		return nil, err
	}
	files["server.pem"], files["server-key.pem"] = sc, sk
	cc, ck, err := ca.issue("envoy-edge-1", false, "edge-1", "spiffe://gitxds.test/node/edge-1")
	if err != nil {
		return nil, err
	}
	files["client.pem"], files["client-key.pem"] = cc, ck
	rc, rk, err := other.issue("intruder", false)
	if err != nil {
		return nil, err
	}
	files["rogue.pem"], files["rogue-key.pem"] = rc, rk
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	j := func(n string) string { return filepath.Join(dir, n) }
	f.CA, f.ServerCert, f.ServerKey = j("ca.pem"), j("server.pem"), j("server-key.pem")
	f.ClientCert, f.ClientKey, f.RogueClientCert, f.RogueKey = j("client.pem"), j("client-key.pem"), j("rogue.pem"), j("rogue-key.pem")
	if f.clientPair, err = tls.X509KeyPair(cc, ck); err != nil {
		return nil, err
	}
	if f.roguePair, err = tls.X509KeyPair(rc, rk); err != nil {
		return nil, err
	}
	f.caPool = x509.NewCertPool()
	f.caPool.AppendCertsFromPEM(ca.pem)
	return f, nil
}

// ClientTLS is a client configuration trusting the CA, presenting the
// valid client certificate (withCert), the rogue one (rogue), or none.
func (f *Files) ClientTLS(withCert, rogue bool) *tls.Config {
	c := &tls.Config{RootCAs: f.caPool, ServerName: f.ServerName, MinVersion: tls.VersionTLS12}
	switch {
	case rogue:
		c.Certificates = []tls.Certificate{f.roguePair}
	case withCert:
		c.Certificates = []tls.Certificate{f.clientPair}
	}
	return c
}

// ClientTLSFor is a client configuration presenting a fresh certificate of
// the CA with the given SANs: URIs ("spiffe://...") and DNS names.
func (f *Files) ClientTLSFor(sans ...string) (*tls.Config, error) {
	c, k, err := f.ca.issue("client", false, sans...)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: f.caPool, ServerName: f.ServerName, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}, nil
}

// Reissue writes a fresh server certificate over ServerCert and ServerKey
// (rotation), returning the new certificate's serial number.
func (f *Files) Reissue() (*big.Int, error) {
	c, k, err := f.ca.issue("gitxds-rotated", true)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(f.ServerCert, c, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(f.ServerKey, k, 0o600); err != nil {
		return nil, err
	}
	b, _ := pem.Decode(c)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, err
	}
	return cert.SerialNumber, nil
}
