package translate

import (
	"fmt"
	"path"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	grpcalsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	earlyheadersv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"gitxds.dev/gitxds/reconciler/ir"
)

// HTTP filter names; per-route configs are keyed by them.
const (
	filterCORS           = wellknown.CORS
	filterLocalRateLimit = "envoy.filters.http.local_ratelimit"
	filterRateLimit      = "envoy.filters.http.ratelimit"
	filterExtProc        = "envoy.filters.http.ext_proc"
	filterWasm           = "envoy.filters.http.wasm"
	filterLua            = "envoy.filters.http.lua"
	filterRouter         = wellknown.Router

	// localRateLimitStatPrefix is the stat prefix of the local rate limit
	// filter and of every per-route bucket.
	localRateLimitStatPrefix = "http_local_rate_limiter"
	// defaultALSLogName is the log_name of a gRPC access log sink that does
	// not name one (the field is required).
	defaultALSLogName = "gitxds"
)

// listenerPortHeader carries the listener port into the scope key of
// scoped routes (see the package comment).
const listenerPortHeader = "x-gitxds-listener-port"

// envoyHCM is the HttpConnectionManager of a socket listener's filter chain,
// validated and packed: RDS of route configuration rcName, or, when
// scopedPort is not zero, scoped routes keyed on (host, scopedPort). Edge
// defaults follow Envoy's "configuring Envoy as an edge proxy" guide: the
// client address is the peer's, paths are normalized and merged so that
// path-based routes cannot be bypassed.
func envoyHCM(statPrefix, rcName string, scopedPort uint32, logs []*accesslogv3.AccessLog, filters []*hcmv3.HttpFilter) (*anypb.Any, error) {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: rcName,
		}},
		HttpFilters:                  filters,
		AccessLog:                    logs,
		UseRemoteAddress:             wrapperspb.Bool(true),
		NormalizePath:                wrapperspb.Bool(true),
		MergeSlashes:                 true,
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT,
		// "shop.example.com." is shop.example.com: the dot is stripped
		// (ConnectionManagerUtility::maybeNormalizeHost, called from
		// ActiveStream::decodeHeaders in
		// source/common/http/conn_manager_impl.cc) before the virtual host
		// or the scope key is looked up.
		StripTrailingHostDot: true,
	}
	if scopedPort != 0 {
		if err := scopeRoutes(hcm, rcName, scopedPort); err != nil {
			return nil, err
		}
	}
	return pack(hcm)
}

// scopeRoutes makes hcm look its route configuration up by scope: the key
// is the host part of :authority and the listener port, which an early
// header mutation puts in listenerPortHeader first.
//
// Scope keys compare raw bytes: HeaderValueExtractorImpl::computeFragment
// and ScopedConfigImpl::getRouteConfig (source/common/router/
// scoped_config_impl.cc) hash the header's text as sent, and Envoy offers
// no way to lowercase it first (the key builder only extracts header
// values; early header mutations and substitution formats have no case
// transform; Host cannot be rewritten by a header mutation). So
// "Host: Shop.example.com" misses the scope of shop.example.com (Gateway
// API hostnames are lowercase) and gets 404, where a per-port
// RouteConfiguration, whose virtual host lookup lowercases the host,
// would route it. Browsers and gRPC clients send lowercase hosts; an
// operator whose clients may not uses one RouteConfiguration per port
// (docs/operations.md, "Envoy versions and route configurations"). A
// trailing dot is stripped (StripTrailingHostDot) and the port is cut at
// the first ":" (the extractor below), so neither misses.
func scopeRoutes(hcm *hcmv3.HttpConnectionManager, name string, port uint32) error {
	setPort, err := pack(&earlyheadersv3.HeaderMutation{Mutations: []*mutationrulesv3.HeaderMutation{{
		Action: &mutationrulesv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: listenerPortHeader, Value: fmt.Sprint(port)},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}}})
	if err != nil {
		return err
	}
	hcm.EarlyHeaderMutationExtensions = []*corev3.TypedExtensionConfig{{
		Name:        "gitxds.listener_port",
		TypedConfig: setPort,
	}}
	extract := func(header, sep string) *hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder {
		return &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{
			Type: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_{
				HeaderValueExtractor: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor{
					Name:             header,
					ElementSeparator: sep,
					ExtractType:      &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Index{Index: 0},
				},
			},
		}
	}
	hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_ScopedRoutes{ScopedRoutes: &hcmv3.ScopedRoutes{
		Name: name,
		ScopeKeyBuilder: &hcmv3.ScopedRoutes_ScopeKeyBuilder{Fragments: []*hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{
			extract(":authority", ":"),
			extract(listenerPortHeader, ","),
		}},
		RdsConfigSource: adsSource(),
		ConfigSpecifier: &hcmv3.ScopedRoutes_ScopedRds{ScopedRds: &hcmv3.ScopedRds{ScopedRdsConfigSource: adsSource()}},
	}}
	return nil
}

func routerFilter() (*hcmv3.HttpFilter, error) {
	router, err := pack(&routerv3.Router{})
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: filterRouter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}, nil
}

// accessLogs of the Gateways of a port: file sinks and gRPC ALS sinks.
func (t *translation) accessLogs(in []ir.AccessLog) ([]*accesslogv3.AccessLog, error) {
	var out []*accesslogv3.AccessLog
	for _, l := range in {
		switch {
		case l.File != "":
			cfg, err := pack(&filev3.FileAccessLog{Path: l.File})
			if err != nil {
				return nil, err
			}
			out = append(out, &accesslogv3.AccessLog{
				Name:       wellknown.FileAccessLog,
				ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: cfg},
			})
		case l.GRPCCluster != "":
			if t.clusters[l.GRPCCluster] == nil {
				return nil, fmt.Errorf("access log cluster %q is not in the IR", l.GRPCCluster)
			}
			name := l.LogName
			if name == "" {
				name = defaultALSLogName
			}
			cfg, err := pack(&grpcalsv3.HttpGrpcAccessLogConfig{CommonConfig: &grpcalsv3.CommonGrpcAccessLogConfig{
				LogName: name,
				GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: l.GRPCCluster},
				}},
				TransportApiVersion: corev3.ApiVersion_V3,
			}})
			if err != nil {
				return nil, err
			}
			out = append(out, &accesslogv3.AccessLog{
				Name:       wellknown.HTTPGRPCAccessLog,
				ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: cfg},
			})
		default:
			return nil, fmt.Errorf("access log has neither a file nor a gRPC cluster")
		}
	}
	return out, nil
}

// downstreamTLS terminates TLS with the listener's certificates, read by the
// proxy from files on its own host (no key material is in Git or in xDS):
// each is an SDS secret over ADS (tlsSecret), so that Envoy reloads the
// files when they change.
func (t *translation) downstreamTLS(tls *ir.TLS) (*corev3.TransportSocket, error) {
	if tls == nil || len(tls.CertificateRefs) == 0 {
		return nil, fmt.Errorf("HTTPS listener has no certificate")
	}
	common := &tlsv3.CommonTlsContext{AlpnProtocols: []string{"h2", "http/1.1"}}
	for _, c := range tls.CertificateRefs {
		s, err := tlsSecret(c)
		if err != nil {
			return nil, err
		}
		if _, ok := t.secrets[s.GetName()]; !ok {
			t.secrets[s.GetName()] = s
		}
		common.TlsCertificateSdsSecretConfigs = append(common.TlsCertificateSdsSecretConfigs, &tlsv3.SdsSecretConfig{
			Name:      s.GetName(),
			SdsConfig: adsSource(),
		})
	}
	ctx, err := pack(&tlsv3.DownstreamTlsContext{CommonTlsContext: common})
	if err != nil {
		return nil, err
	}
	return &corev3.TransportSocket{
		Name:       wellknown.TransportSocketTLS,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: ctx},
	}, nil
}

// tlsSecret is the SDS secret of one certificate: the certificate chain and
// private key files, and the directory that holds them as the watched
// directory. Envoy reads file-based secrets delivered by SDS again when
// the watched directory sees a file moved into it
// (source/common/secret/sds_api.cc: SdsApi::onConfigUpdate sets up the
// watch with WatchedDirectory and SdsApi::onWatchUpdate reloads the files,
// checking that certificate and key were read consistently), which is how
// a Kubernetes Secret volume (its ..data symlink swap) or an atomic
// "mv" rotates them. A certificate given inline in the listener, as before,
// is read once when the listener is created. The same files are one
// secret, whichever Gateways use them: named "tls:<dir>" for the
// certificates directory convention (<dir>/tls.crt and <dir>/tls.key, see
// docs/operations.md), "tls:<cert file>,<key file>" otherwise. Files in two
// directories get no watched directory: Envoy then watches both parent
// directories.
func tlsSecret(c ir.TLSCertificate) (*tlsv3.Secret, error) {
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, fmt.Errorf("certificate %q: certificate and key files are required", c.Name)
	}
	dir := path.Dir(c.CertFile)
	name := tlsSecretPrefix + c.CertFile + "," + c.KeyFile
	if path.Join(dir, certFileName) == c.CertFile && path.Join(dir, keyFileName) == c.KeyFile {
		name = tlsSecretPrefix + dir
	}
	cert := &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: c.CertFile}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: c.KeyFile}},
	}
	if path.Dir(c.KeyFile) == dir {
		cert.WatchedDirectory = &corev3.WatchedDirectory{Path: dir}
	}
	s := &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: cert}}
	if err := s.ValidateAll(); err != nil {
		return nil, fmt.Errorf("certificate %q: %w", c.Name, err)
	}
	return s, nil
}

// tlsSecretPrefix starts the name of every TLS secret.
const tlsSecretPrefix = "tls:"

// The file names of a certificate directory (a Kubernetes TLS Secret's keys).
const (
	certFileName = "tls.crt"
	keyFileName  = "tls.key"
)
