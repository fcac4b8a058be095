package model

import (
	"fmt"
	"slices"
	"strings"
)

// maxListed is how many names a message lists at most ("valid: a, b, c
// and 4 more"): enough to spot a typo, short enough for a status line.
const maxListed = 8

// listNames is names sorted, without duplicates, joined by ", ": the first
// maxListed of them and how many more. names is not modified.
func listNames(names []string) string {
	s := slices.Clone(names)
	slices.Sort(s)
	s = slices.Compact(s)
	if len(s) <= maxListed {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(s[:maxListed], ", "), len(s)-maxListed)
}
