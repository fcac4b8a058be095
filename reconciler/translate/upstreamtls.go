package translate

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"gitxds.dev/gitxds/reconciler/ir"
)

const transportSocketTLS = "envoy.transport_sockets.tls"

// setUpstreamTLS gives an Envoy cluster the TLS transport socket of a
// BackendTLSPolicy: SNI, the CA bundle file as trusted_ca, and the
// subject alt names to match (the SNI as a DNS name when the policy names
// none, as Gateway API requires the hostname to be authenticated). Envoy
// verifies the chain against trusted_ca and then the SANs
// (source/common/tls/cert_validator/default_validator.cc,
// DefaultCertValidator::doVerifyCertChain and verifySubjectAltName); a
// missing trusted_ca file fails the cluster at load time
// (DefaultCertValidator::initializeSslContexts reads it).
func setUpstreamTLS(out *clusterv3.Cluster, t *ir.UpstreamTLS) error {
	if t == nil {
		return nil
	}
	sans := t.SubjectAltNames
	if len(sans) == 0 {
		sans = []ir.SubjectAltName{{Value: t.SNI}}
	}
	vc := &tlsv3.CertificateValidationContext{
		TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: t.TrustedCAFile}},
	}
	for _, s := range sans {
		typ := tlsv3.SubjectAltNameMatcher_DNS
		if s.URI {
			typ = tlsv3.SubjectAltNameMatcher_URI
		}
		vc.MatchTypedSubjectAltNames = append(vc.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{
			SanType: typ,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s.Value}},
		})
	}
	cfg, err := pack(&tlsv3.UpstreamTlsContext{
		Sni:              t.SNI,
		CommonTlsContext: &tlsv3.CommonTlsContext{ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc}},
	})
	if err != nil {
		return err
	}
	out.TransportSocket = &corev3.TransportSocket{Name: transportSocketTLS, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: cfg}}
	return nil
}
