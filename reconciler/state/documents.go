package state

// Document is a file of the state directory. Everything gitxds persists is
// one of these; each is written atomically and decoded strictly.
type Document string

const (
	// LastGood is the snapshot that last completed a rollout: served at
	// once after a restart, even with Git unreachable (SaveLastGood).
	LastGood Document = "lastgood"
	// Reconciler is what the control loop remembers beside it: the last
	// good revision, the last accepted version of every object and when
	// each was first accepted, the hashes that completed a rollout, and
	// the failed revisions (reconciler/store.go).
	Reconciler Document = "reconciler"
	// History is the list of the revisions attempted and what became of
	// them (GET /history).
	History Document = "history"
	// Rollout is the rollout in progress: a restart reports it as
	// interrupted.
	Rollout Document = "rollout"
	// Building marks the build in progress, so that a build that killed
	// the process is not built again (reconciler/buildguard.go).
	Building Document = "building"
)

// File is the document's file name in the state directory.
func (d Document) File() string { return string(d) + fileExt }
