package translate

import (
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/ir"
)

// RateLimitServiceConfig is the configuration a rate limit service needs
// for the global rate limits of an IR, in the file format of Envoy's
// reference rate limit service (github.com/envoyproxy/ratelimit: a domain
// and nested descriptors, the innermost with its rate_limit), which
// testenv/ratelimit loads too.
//
// The descriptors Envoy sends are exactly those globalRateLimit builds:
// ("rule", "<ns>/<policy>/<i>") first, then one entry per selector in
// order; so each rule is one chain of nested descriptors here, and the
// limit sits on its last entry. An entry whose value is counted apart (a
// Distinct header or source) has a key and no value, which the service
// reads as "each value its own counter". A rule's counter is shared by
// every route its policy targets.
//
// gitxds renders this file (gitxds render -o ratelimit) rather than serve
// it: the rate limit service is the operator's, and its configuration is
// a file it already reads and reloads; the descriptors and the file come
// from the same IR, so they cannot disagree.
func RateLimitServiceConfig(x *ir.IR) ([]byte, error) {
	rules := map[string]ir.GlobalRateLimitRule{}
	for _, g := range x.Gateways {
		for _, l := range g.Listeners {
			for _, vh := range l.VirtualHosts {
				for _, r := range vh.Routes {
					if r.GlobalRateLimit == nil {
						continue
					}
					for _, rule := range r.GlobalRateLimit.Rules {
						rules[rule.ID] = rule
					}
				}
			}
		}
	}
	ids := make([]string, 0, len(rules))
	for id := range rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	cfg := RateLimitFile{Domain: ir.RateLimitDomain}
	for _, id := range ids {
		cfg.Descriptors = append(cfg.Descriptors, ruleDescriptor(rules[id]))
	}
	return yaml.Marshal(cfg)
}

// RateLimitFile is the rate limit service's configuration file.
type RateLimitFile struct {
	Domain      string                `json:"domain"`
	Descriptors []RateLimitDescriptor `json:"descriptors,omitempty"`
}

// RateLimitDescriptor matches one entry of a descriptor (a key and, unless
// every value is counted apart, a value); the limit is on the last entry.
type RateLimitDescriptor struct {
	Key         string                `json:"key"`
	Value       string                `json:"value,omitempty"`
	RateLimit   *RateLimitValue       `json:"rate_limit,omitempty"`
	Descriptors []RateLimitDescriptor `json:"descriptors,omitempty"`
}

// RateLimitValue is requests per unit (second, minute, hour, day).
type RateLimitValue struct {
	Unit            string `json:"unit"`
	RequestsPerUnit uint32 `json:"requests_per_unit"`
}

// ruleDescriptor is the chain of entries of one rule, in the order
// globalRateLimit's actions produce them.
func ruleDescriptor(rule ir.GlobalRateLimitRule) RateLimitDescriptor {
	entries := []RateLimitDescriptor{{Key: descriptorRule, Value: rule.ID}}
	for _, h := range rule.Headers {
		e := RateLimitDescriptor{Key: headerDescriptorKey(h.Name)}
		if !h.Distinct {
			e.Value = descriptorMatched
		}
		entries = append(entries, e)
	}
	if rule.Path != nil {
		entries = append(entries, RateLimitDescriptor{Key: descriptorPath, Value: descriptorMatched})
	}
	for _, s := range rule.SourceIPs {
		e := RateLimitDescriptor{Key: descriptorMaskedAddress}
		if !s.Distinct {
			e.Value = s.CIDR
		}
		entries = append(entries, e)
	}
	for _, c := range rule.JWTClaims {
		e := RateLimitDescriptor{Key: claimDescriptorKey(c.Claim)}
		if !c.Distinct {
			e.Value = c.Value
		}
		entries = append(entries, e)
	}
	entries[len(entries)-1].RateLimit = &RateLimitValue{Unit: strings.ToLower(string(rule.Unit)), RequestsPerUnit: rule.Requests}
	for i := len(entries) - 1; i > 0; i-- {
		entries[i-1].Descriptors = []RateLimitDescriptor{entries[i]}
	}
	return entries[0]
}
