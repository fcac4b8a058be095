package authz

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// Headers of token separation.
const (
	// HeaderInternalToken carries the internal token the service mints;
	// the gateway lets it reach the upstream (headersToBackend).
	HeaderInternalToken = "x-internal-token"
	// HeaderExtra is another header the service returns, which
	// headersToBackend does not name: it must not reach the upstream.
	HeaderExtra = "x-authz-extra"
	// HeaderIdentity is where the gateway puts the verified subject
	// (claimToHeaders) for an HTTP authorization service.
	HeaderIdentity = "x-user-id"
	// HeaderDeny makes the service refuse the request.
	HeaderDeny = "x-authz-deny"
	// jwtNamespace is the dynamic metadata namespace of Envoy's jwt_authn
	// filter, which a gRPC service receives in the metadata context.
	jwtNamespace = "envoy.filters.http.jwt_authn"
)

// Server is an external authorization service. It allows a request that
// carries a verified identity (the jwt_authn payload in the gRPC metadata
// context, or HeaderIdentity) and answers with the internal token for
// that identity; it denies a request without one, or with HeaderDeny.
type Server struct {
	secret []byte

	grpcLis, httpLis net.Listener
	grpcSrv          *grpc.Server
	httpSrv          *http.Server

	mu   sync.Mutex
	seen []map[string]string // the headers of every check, newest last
}

// Start serves gRPC and HTTP on two free ports of 127.0.0.1. Tokens are
// signed with secret.
func Start(secret string) (*Server, error) {
	s := &Server{secret: []byte(secret)}
	var err error
	if s.grpcLis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	if s.httpLis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		s.grpcLis.Close()
		return nil, err
	}
	s.grpcSrv = grpc.NewServer()
	authv3.RegisterAuthorizationServer(s.grpcSrv, grpcAuth{s})
	s.httpSrv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go s.grpcSrv.Serve(s.grpcLis)
	go s.httpSrv.Serve(s.httpLis)
	return s, nil
}

// GRPCPort and HTTPPort are the listening ports.
func (s *Server) GRPCPort() int { return s.grpcLis.Addr().(*net.TCPAddr).Port }

// HTTPPort is the port of the HTTP service.
func (s *Server) HTTPPort() int { return s.httpLis.Addr().(*net.TCPAddr).Port }

// Close stops both servers.
func (s *Server) Close() {
	s.grpcSrv.Stop()
	s.httpSrv.Close()
}

// Token is the internal token of subject.
func (s *Server) Token(subject string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(subject))
	return "internal." + subject + "." + hex.EncodeToString(m.Sum(nil))[:32]
}

// Seen are the request headers of every check, oldest first.
func (s *Server) Seen() []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]string(nil), s.seen...)
}

func (s *Server) record(h map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, h)
}

// decide returns the subject to mint a token for, or "" to deny.
func (s *Server) decide(headers map[string]string, verified string) string {
	if headers[HeaderDeny] != "" {
		return ""
	}
	if verified != "" {
		return verified
	}
	return headers[HeaderIdentity]
}

type grpcAuth struct{ s *Server }

func (g grpcAuth) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp().GetHeaders()
	g.s.record(h)
	sub := g.s.decide(h, verifiedSubject(req))
	if sub == "" {
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
				Body:   "denied by the authorization service",
			}},
		}, nil
	}
	set := func(k, v string) *corev3.HeaderValueOption {
		return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{set(HeaderInternalToken, g.s.Token(sub)), set(HeaderExtra, "1")},
		}},
	}, nil
}

// verifiedSubject is the sub claim of the first jwt_authn payload in the
// metadata context (by payload key), if any.
func verifiedSubject(req *authv3.CheckRequest) string {
	md := req.GetAttributes().GetMetadataContext().GetFilterMetadata()[jwtNamespace].GetFields()
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if sub := md[k].GetStructValue().GetFields()["sub"].GetStringValue(); sub != "" {
			return sub
		}
	}
	return ""
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := map[string]string{":path": r.URL.RequestURI(), ":method": r.Method}
	for k, v := range r.Header {
		h[strings.ToLower(k)] = strings.Join(v, ",")
	}
	s.record(h)
	sub := s.decide(h, "")
	if sub == "" {
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte("denied by the authorization service"))
		return
	}
	w.Header().Set(HeaderInternalToken, s.Token(sub))
	w.Header().Set(HeaderExtra, "1")
	w.WriteHeader(http.StatusOK)
}
