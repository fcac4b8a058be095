package gloo

import (
	"fmt"
	"io"
	"sort"
)

// Severity of a report entry.
type Severity string

const (
	// NotConverted: the field has no equivalent in the output; what it did
	// in Gloo Edge is not done by the converted repository.
	NotConverted Severity = "not converted"
	// Changed: converted, with a difference in behaviour the entry explains.
	Changed Severity = "converted with a difference"
	// Note: converted; something to do or know before serving it.
	Note Severity = "note"
)

// Entry is one thing the conversion reports, at a file and a field path.
type Entry struct {
	File     string
	Field    string
	Severity Severity
	Message  string
}

func (e Entry) String() string {
	return fmt.Sprintf("%s: %s: %s: %s", e.File, e.Field, e.Severity, e.Message)
}

// Report lists what could not be converted, or was converted differently.
type Report struct {
	seen    map[Entry]bool
	Entries []Entry
}

func (r *Report) add(e Entry) {
	if r.seen == nil {
		r.seen = map[Entry]bool{}
	}
	if r.seen[e] {
		return
	}
	r.seen[e] = true
	r.Entries = append(r.Entries, e)
}

func (r *Report) notConverted(file, field, format string, args ...any) {
	r.add(Entry{File: file, Field: field, Severity: NotConverted, Message: fmt.Sprintf(format, args...)})
}

func (r *Report) changed(file, field, format string, args ...any) {
	r.add(Entry{File: file, Field: field, Severity: Changed, Message: fmt.Sprintf(format, args...)})
}

func (r *Report) note(file, field, format string, args ...any) {
	r.add(Entry{File: file, Field: field, Severity: Note, Message: fmt.Sprintf(format, args...)})
}

// Count returns the number of entries of a severity.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, e := range r.Entries {
		if e.Severity == s {
			n++
		}
	}
	return n
}

// sort groups the entries by file; within a file they stay in the order of
// the conversion (the order of the input's fields).
func (r *Report) sort() {
	sort.SliceStable(r.Entries, func(i, j int) bool { return r.Entries[i].File < r.Entries[j].File })
}

// Write writes one entry a line.
func (r *Report) Write(w io.Writer) error {
	for _, e := range r.Entries {
		if _, err := fmt.Fprintln(w, e); err != nil {
			return err
		}
	}
	return nil
}
