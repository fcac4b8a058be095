package translate

import (
	"fmt"
	"regexp"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// validator is implemented by every generated Envoy message
// (protoc-gen-validate).
type validator interface {
	ValidateAll() error
}

// pack validates a typed config and packs it into an Any. Validation of the
// enclosing resource does not look inside an Any, so this is the only place
// the typed config is checked. The bytes are marshalled deterministically.
func pack(m proto.Message) (*anypb.Any, error) {
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			return nil, fmt.Errorf("%s: %w", m.ProtoReflect().Descriptor().FullName(), err)
		}
	}
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, fmt.Errorf("pack %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return a, nil
}

// compileRegex checks that a regular expression is RE2 (Go's regexp is
// RE2), as Envoy and gRPC require, before it is emitted.
func compileRegex(re string) error {
	if _, err := regexp.Compile(re); err != nil {
		return fmt.Errorf("regular expression %q is not RE2: %w", re, err)
	}
	return nil
}

// regexMatcher is a RE2 matcher; the expression must have been checked with
// compileRegex.
func regexMatcher(re string) *matcherv3.RegexMatcher {
	return &matcherv3.RegexMatcher{Regex: re}
}

// adsSource is the config source of RDS and EDS: the ADS stream, xDS v3.
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

func duration(d time.Duration) *durationpb.Duration {
	if d <= 0 {
		return nil
	}
	return durationpb.New(d)
}

func u32(v uint32) *wrapperspb.UInt32Value {
	if v == 0 {
		return nil
	}
	return wrapperspb.UInt32(v)
}

func percent(p uint32) *typev3.Percent {
	return &typev3.Percent{Value: float64(p)}
}

func fraction(p uint32) *corev3.RuntimeFractionalPercent {
	return &corev3.RuntimeFractionalPercent{
		DefaultValue: &typev3.FractionalPercent{Numerator: p, Denominator: typev3.FractionalPercent_HUNDRED},
	}
}
