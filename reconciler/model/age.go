package model

import (
	"sort"

	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/status"
)

// Since is when gitxds first accepted an object: the revision, and Seq, the
// place of that revision in the order gitxds accepted revisions (Git
// hashes have no order). A smaller Seq is older.
type Since struct {
	Revision string `json:"revision,omitempty"`
	Seq      uint64 `json:"seq"`
}

// Memory is what the model keeps from one revision for the next: the last
// accepted version of every object and when each was first accepted. The
// caller persists it with its state.
type Memory struct {
	Accepted      map[string]render.Object `json:"accepted,omitempty"`
	FirstAccepted map[string]Since         `json:"firstAccepted,omitempty"`
}

// Memory returns what the next revision's Input needs of this output.
func (o *Output) Memory() *Memory {
	return &Memory{Accepted: o.Accepted, FirstAccepted: o.FirstAccepted}
}

// firstAccepted carries over the age of every object still accepted (kept
// or served) and gives the objects accepted for the first time revision
// in.Revision, one Seq after the newest known.
func firstAccepted(in Input, final *result, accepted map[string]render.Object) map[string]Since {
	out := make(map[string]Since, len(accepted))
	var next uint64
	for _, s := range in.FirstAccepted {
		if s.Seq >= next {
			next = s.Seq + 1
		}
	}
	add := func(key string) {
		if _, ok := out[key]; ok {
			return
		}
		if s, ok := in.FirstAccepted[key]; ok {
			out[key] = s
			return
		}
		if _, ok := in.LastAccepted[key]; ok {
			// Accepted before ages were kept (a state written by an
			// older gitxds): as old as the oldest.
			out[key] = Since{}
			return
		}
		out[key] = Since{Revision: in.Revision, Seq: next}
	}
	for key := range accepted {
		add(key)
	}
	// Objects served in part (Accepted=True, a reference unresolved) hold
	// their claims too.
	for _, o := range final.objects {
		if o.dropped || o.typed == nil {
			continue
		}
		if c := status.Problem(o.status()); c == nil || c.Type == CondResolvedRefs {
			add(Key(o.src))
		}
	}
	return out
}

// seniority orders the routes that claim the same hostname or match, the
// oldest first, as Gateway API decides conflicts:
//
//  1. a route serving this very version already (its last accepted version
//     is this one): a conflict never takes away what is served, even from
//     a younger route, when an older one changes to claim it;
//  2. then the revision that first accepted it (older first; a route never
//     accepted is the youngest, one with a last accepted version but no
//     age, from a state an older gitxds wrote, the oldest);
//  3. then "namespace/name" (routes accepted in the same revision).
//
// It sets route.seniority (0 is the most senior) on b.rts.
func (b *builder) seniority() {
	sorted := append([]*route(nil), b.rts...)
	type key struct {
		held  bool
		known bool
		seq   uint64
	}
	keys := make(map[*route]key, len(sorted))
	for _, r := range sorted {
		s, ok := b.age(r)
		keys[r] = key{held: b.held(r.obj), known: ok, seq: s.Seq}
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		a, c := keys[sorted[i]], keys[sorted[j]]
		if a.held != c.held {
			return a.held
		}
		if a.known != c.known {
			return a.known
		}
		if a.seq != c.seq {
			return a.seq < c.seq
		}
		return sorted[i].key() < sorted[j].key()
	})
	for i, r := range sorted {
		r.seniority = i
	}
}

// age is when r was first accepted; ok is false for a route never
// accepted. A route with a last accepted version but no age (a state an
// older gitxds wrote) is as old as the oldest.
func (b *builder) age(r *route) (Since, bool) {
	if s, ok := b.since[Key(r.obj.src)]; ok {
		return s, true
	}
	_, ok := b.last[Key(r.obj.src)]
	return Since{}, ok
}

// held reports whether this version of o is the one that was accepted and
// served at the last revision.
func (b *builder) held(o *object) bool {
	last, ok := b.last[Key(o.src)]
	return ok && last.File == o.src.File && string(last.YAML) == string(o.src.YAML)
}

// why says why winner holds a claim before loser, for the loser's status.
func (b *builder) why(winner, loser *route) string {
	ws, wok := b.age(winner)
	first := "accepted in an earlier revision"
	if ws.Revision != "" {
		first = "first accepted in revision " + ws.Revision
	}
	switch {
	case b.held(winner.obj) && !b.held(loser.obj):
		return "served already, " + first
	case wok:
		if ls, lok := b.age(loser); !lok || ls.Seq > ws.Seq {
			return "older: " + first
		}
	}
	return "as old, and first by namespace/name"
}
