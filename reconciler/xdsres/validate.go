package xdsres

import (
	"errors"
	"fmt"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// validator is what every generated Envoy message implements
// (protoc-gen-validate).
type validator interface{ ValidateAll() error }

// ValidateAll runs m's own ValidateAll, which does not look inside the
// Anys m holds; nil for a message without one.
func ValidateAll(m proto.Message) error {
	if v, ok := m.(validator); ok {
		return v.ValidateAll()
	}
	return nil
}

// Validate runs ValidateAll on m and, since ValidateAll does not look
// inside an Any, on every message packed in an Any anywhere inside m, and
// in theirs. An Any whose type is not linked into the binary is an error,
// as in Envoy, which rejects a typed config of an extension it does not
// have. The per-route FilterConfig that only enables a filter
// (EnablesOnly) holds an empty Any, which is not unpacked.
func Validate(m proto.Message) error {
	var errs []error
	if err := ValidateAll(m); err != nil {
		errs = append(errs, err)
	}
	if EnablesOnly(m) {
		return errors.Join(errs...)
	}
	walkAnys(m.ProtoReflect(), func(a *anypb.Any) {
		inner, err := a.UnmarshalNew()
		if err != nil {
			errs = append(errs, fmt.Errorf("typed config %s: %w", a.GetTypeUrl(), err))
			return
		}
		if err := Validate(inner); err != nil {
			errs = append(errs, fmt.Errorf("typed config %s: %w", a.GetTypeUrl(), err))
		}
	})
	return errors.Join(errs...)
}

// walkAnys calls fn for every Any directly reachable in m (not inside
// another Any: Validate recurses into those).
func walkAnys(m protoreflect.Message, fn func(*anypb.Any)) {
	EachChild(m, func(x protoreflect.Message) {
		if a, ok := x.Interface().(*anypb.Any); ok {
			fn(a)
			return
		}
		walkAnys(x, fn)
	})
}

// EnablesOnly reports whether m is the per-route FilterConfig that only
// enables a filter: its config is an empty Any, which Envoy does not
// unpack ("If the field `config` is configured but is empty, we treat the
// filter is enabled explicitly", PerFilterConfigs::PerFilterConfigs in
// source/common/router/per_filter_config.cc), and which walks over typed
// configs must not unpack either.
func EnablesOnly(m proto.Message) bool {
	fc, ok := m.(*routev3.FilterConfig)
	return ok && !fc.GetDisabled() && fc.GetConfig() != nil && fc.GetConfig().GetTypeUrl() == "" && len(fc.GetConfig().GetValue()) == 0
}

// EachChild calls fn for every message a field of m holds directly: a
// singular message field, each element of a list, each value of a map. It
// is the one walk over a resource's messages (Validate here, translate's
// semantics check).
func EachChild(m protoreflect.Message, fn func(protoreflect.Message)) {
	m.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case f.IsList():
			if f.Message() == nil {
				return true
			}
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				fn(l.Get(i).Message())
			}
		case f.IsMap():
			if f.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					fn(mv.Message())
					return true
				})
			}
		case f.Message() != nil:
			fn(v.Message())
		}
		return true
	})
}

// DecodeAll decodes the resources of a response of typeURL, each of which
// must be of that type.
func DecodeAll(typeURL string, rs []*anypb.Any) ([]proto.Message, error) {
	out := make([]proto.Message, 0, len(rs))
	for i, a := range rs {
		if a.GetTypeUrl() != typeURL {
			return nil, fmt.Errorf("resource %d: type %s in a response of %s", i, a.GetTypeUrl(), typeURL)
		}
		m, err := Decode(typeURL, a.GetValue())
		if err != nil {
			var u *UnknownTypeError
			if errors.As(err, &u) {
				return nil, err
			}
			return nil, fmt.Errorf("resource %d: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// MaglevTableSize says whether n is a table size Envoy takes for a Maglev
// load balancer: a prime number (source/extensions/load_balancing_policies/
// maglev/maglev_lb.cc, MaglevLoadBalancer's constructor: "The table size of
// maglev must be prime number").
func MaglevTableSize(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
