package apiref

import (
	"bytes"
	"fmt"
	"strings"
)

// Markdown renders the reference. source is the package directory as shown
// to the reader (reconciler/model/apis/v1alpha1).
func Markdown(p *Package, source string) []byte {
	var b bytes.Buffer
	apiVersion := p.Group + "/" + p.Version
	fmt.Fprintf(&b, "# Field reference: %s kinds\n\n", apiVersion)
	fmt.Fprintf(&b, "<!-- Generated from the Go types in %s by `go test ./reconciler/model/apis/apiref -update`. Do not edit. -->\n\n", source)
	fmt.Fprintf(&b, "gitxds's own kinds, generated from their Go types (`%s`). ", source)
	b.WriteString("Gateway, HTTPRoute, GRPCRoute and ReferenceGrant are Gateway API's own kinds, " +
		"and Namespace is Kubernetes'; the guides for team developers and platform owners in this directory say what gitxds reads of them.\n\n")
	fmt.Fprintf(&b, "Every object has `apiVersion: %s`, `kind` and `metadata.name`. "+
		"`metadata.namespace` is the team's: an object under `teams/<team>/` must be in namespace `<team>` "+
		"(the team's `kustomization.yaml` sets it with `namespace: <team>`), and one of `platform/` in namespace `platform`. "+
		"Objects are decoded strictly: a field that is not listed here, or is given twice, rejects the object.\n\n", apiVersion)
	b.WriteString("In the tables, `[]` in a path is every item of a list; a field marked required is required whenever the object that holds it is present; " +
		"durations are Go durations (`500ms`, `10s`, `1m30s`). The Default column is what gitxds uses when the field is left out.\n\n")
	for _, k := range p.Kinds {
		fmt.Fprintf(&b, "- [%s](#%s)\n", k.Name, strings.ToLower(k.Name))
	}
	for _, k := range p.Kinds {
		fmt.Fprintf(&b, "\n## %s\n\n", k.Name)
		fmt.Fprintf(&b, "`apiVersion: %s`, `kind: %s`\n\n", apiVersion, k.Name)
		if k.Doc != "" {
			b.WriteString(paragraphs(k.Doc))
			b.WriteString("\n\n")
		}
		b.WriteString("| Field | Type | Required | Default | Validation | Description |\n")
		b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
		for _, f := range k.Fields {
			req := ""
			if f.Required {
				req = "yes"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n",
				f.Path, cell(f.Type), req, cell(f.Default), cell(f.Validation), cell(f.Doc))
		}
	}
	return b.Bytes()
}

// paragraphs joins the lines of each paragraph of a doc comment.
func paragraphs(doc string) string {
	var out []string
	for _, p := range strings.Split(doc, "\n\n") {
		out = append(out, strings.Join(strings.Fields(p), " "))
	}
	return strings.Join(out, "\n\n")
}

// cell is text fit for one table cell.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
