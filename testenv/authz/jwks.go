// Package authz runs the authentication services of the SecurityPolicy
// tests: a JWT issuer that generates its key at start-up, publishes the
// public key as a JSON Web Key Set over HTTP and signs tokens; and an
// external authorization service (envoy.service.auth.v3 over gRPC, and
// HTTP) that mints the internal token of token separation. Servers listen
// on 127.0.0.1 only.
package authz

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// JWKSPath is where an Issuer serves its key set.
const JWKSPath = "/jwks.json"

// Issuer signs ES256 tokens (RFC 7518 §3.4) with a P-256 key generated at
// start-up and serves the public key at JWKSPath.
type Issuer struct {
	Name string // the iss claim
	kid  string
	key  *ecdsa.PrivateKey
	lis  net.Listener
	srv  *http.Server
}

// NewIssuer generates a key; Serve publishes it.
func NewIssuer(name string) (*Issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append(key.X.Bytes(), key.Y.Bytes()...))
	return &Issuer{Name: name, kid: b64(sum[:8]), key: key}, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// fixed is n as a big-endian number of size bytes (RFC 7518 §6.2.1.2).
func fixed(n *big.Int, size int) []byte {
	out := make([]byte, size)
	n.FillBytes(out)
	return out
}

// JWKS is the public key set (RFC 7517): one EC key.
func (i *Issuer) JWKS() []byte {
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": i.kid,
		"x": b64(fixed(i.key.X, 32)), "y": b64(fixed(i.key.Y, 32)),
	}}})
	return b
}

// Sign returns a compact JWS of claims; iss is set to the issuer's name,
// iat and exp (one hour) unless claims set them.
func (i *Issuer) Sign(claims map[string]any) (string, error) {
	c := map[string]any{"iss": i.Name, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	head, err := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": i.kid})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	input := b64(head) + "." + b64(body)
	h := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, i.key, h[:])
	if err != nil {
		return "", err
	}
	return input + "." + b64(append(fixed(r, 32), fixed(s, 32)...)), nil
}

// Serve publishes the key set on 127.0.0.1 (a free port).
func (i *Issuer) Serve() error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc(JWKSPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(i.JWKS())
	})
	i.lis, i.srv = lis, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go i.srv.Serve(lis)
	return nil
}

// Port of the key set server.
func (i *Issuer) Port() int { return i.lis.Addr().(*net.TCPAddr).Port }

// URL of the key set.
func (i *Issuer) URL() string { return fmt.Sprintf("http://%s%s", i.lis.Addr(), JWKSPath) }

// Close stops the key set server.
func (i *Issuer) Close() {
	if i.srv != nil {
		i.srv.Close()
	}
}
