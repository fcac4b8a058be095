package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

// verify checks token against the key set the way a relying party does:
// the key of the token's kid, ES256.
func verify(t testing.TB, jwks []byte, token string) map[string]any {
	t.Helper()
	var set struct {
		Keys []struct{ Kid, Kty, Crv, X, Y string }
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var head struct{ Alg, Kid string }
	json.Unmarshal(dec(parts[0]), &head)
	if head.Alg != "ES256" {
		t.Fatalf("alg %s", head.Alg)
	}
	for _, k := range set.Keys {
		if k.Kid != head.Kid || k.Kty != "EC" || k.Crv != "P-256" {
			continue
		}
		pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(dec(k.X)), Y: new(big.Int).SetBytes(dec(k.Y))}
		sig := dec(parts[2])
		h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatal("signature does not verify")
		}
		var claims map[string]any
		json.Unmarshal(dec(parts[1]), &claims)
		return claims
	}
	t.Fatalf("no key %s in the set", head.Kid)
	return nil
}

// verifies reports whether token's signature verifies with the set's key
// of its kid.
func verifies(jwks []byte, token string) bool {
	ok := true
	ft := &fatalT{}
	func() {
		defer func() {
			if recover() != nil {
				ok = false
			}
		}()
		verify(ft, jwks, token)
	}()
	return ok && !ft.failed
}

// fatalT turns t.Fatal into a panic verifies recovers.
type fatalT struct {
	testing.TB
	failed bool
}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatal(args ...any) {
	f.failed = true
	panic("fatal")
}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.failed = true
	panic("fatal")
}

func TestIssuerSignsWhatItsKeySetVerifies(t *testing.T) {
	i, err := NewIssuer("https://issuer.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := i.Serve(); err != nil {
		t.Fatal(err)
	}
	defer i.Close()
	resp, err := http.Get(i.URL())
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok, err := i.Sign(map[string]any{"sub": "alice", "scope": "read write"})
	if err != nil {
		t.Fatal(err)
	}
	claims := verify(t, served, tok)
	if claims["sub"] != "alice" || claims["iss"] != "https://issuer.test" || claims["scope"] != "read write" {
		t.Fatalf("claims %v", claims)
	}
	// A token signed by another issuer's key does not verify against
	// this key set: the check above is not vacuous.
	other, _ := NewIssuer("https://issuer.test")
	forged, _ := other.Sign(map[string]any{"sub": "alice"})
	parts := strings.Split(forged, ".")
	mine := strings.Split(tok, ".")
	if verifies(served, mine[0]+"."+parts[1]+"."+parts[2]) {
		t.Fatal("a token signed by another key verifies")
	}
}

func TestExtAuthzGRPC(t *testing.T) {
	s, err := Start("secret")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", s.GRPCPort()), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := authv3.NewAuthorizationClient(conn)
	check := func(headers map[string]string, sub string) *authv3.CheckResponse {
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Headers: headers}},
		}}
		if sub != "" {
			payload, _ := structpb.NewStruct(map[string]any{"sub": sub})
			req.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
				jwtNamespace: {Fields: map[string]*structpb.Value{"a/app/corp": structpb.NewStructValue(payload)}},
			}}
		}
		resp, err := c.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	tokenOf := func(r *authv3.CheckResponse) string {
		for _, h := range r.GetOkResponse().GetHeaders() {
			if h.GetHeader().GetKey() == HeaderInternalToken {
				return h.GetHeader().GetValue()
			}
		}
		return ""
	}
	if r := check(nil, "alice"); r.GetStatus().GetCode() != int32(codes.OK) || tokenOf(r) != s.Token("alice") {
		t.Errorf("verified alice: %v", r)
	}
	if r := check(map[string]string{HeaderIdentity: "bob"}, ""); tokenOf(r) != s.Token("bob") {
		t.Errorf("identity header bob: %v", r)
	}
	if r := check(map[string]string{}, ""); r.GetStatus().GetCode() != int32(codes.PermissionDenied) || r.GetDeniedResponse().GetStatus().GetCode() != 403 {
		t.Errorf("no identity: %v", r)
	}
	if r := check(map[string]string{HeaderDeny: "1"}, "alice"); r.GetStatus().GetCode() != int32(codes.PermissionDenied) {
		t.Errorf("deny header: %v", r)
	}
	if s.Token("alice") == s.Token("bob") || !strings.HasPrefix(s.Token("alice"), "internal.alice.") {
		t.Errorf("tokens %s %s", s.Token("alice"), s.Token("bob"))
	}
	if got := len(s.Seen()); got != 4 {
		t.Errorf("recorded %d checks, want 4", got)
	}
}

func TestExtAuthzHTTP(t *testing.T) {
	s, err := Start("secret")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(h map[string]string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/check/api", s.HTTPPort()), nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get(map[string]string{HeaderIdentity: "carol"}); r.StatusCode != 200 || r.Header.Get(HeaderInternalToken) != s.Token("carol") {
		t.Errorf("carol: %d %v", r.StatusCode, r.Header)
	}
	if r := get(nil); r.StatusCode != 403 || r.Header.Get(HeaderInternalToken) != "" {
		t.Errorf("anonymous: %d", r.StatusCode)
	}
	if seen := s.Seen(); seen[0][":path"] != "/check/api" {
		t.Errorf("path %q", seen[0][":path"])
	}
}
