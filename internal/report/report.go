// Package report writes a scan's result for people (a table) and for
// programs (JSON, schema "vigil-scan/v1", documented in docs/json-report.md).
// The JSON schema is stable: fields are added, never renamed or removed,
// within one schema version.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/model"
)

// Schema names the JSON document format.
const Schema = "vigil-scan/v1"

// Scan is the result of scanning one image.
type Scan struct {
	Schema          string              `json:"schema"`
	Image           Image               `json:"image"`
	Distribution    *model.Distribution `json:"distribution"`
	Packages        []model.Package     `json:"packages"`
	Vulnerabilities []Vulnerability     `json:"vulnerabilities"`
	Summary         map[string]int      `json:"summary"` // findings per normalized severity
	Warnings        []string            `json:"warnings,omitempty"`
}

// Image identifies the scanned image.
type Image struct {
	Ref            string            `json:"ref"`
	ID             string            `json:"id,omitempty"`
	ManifestDigest string            `json:"manifest_digest,omitempty"`
	Layers         []index.LayerInfo `json:"layers"`
}

// Vulnerability is one finding: an advisory affecting an installed package.
type Vulnerability struct {
	ID               string   `json:"id"`
	Aliases          []string `json:"aliases,omitempty"`
	Package          string   `json:"package"`
	InstalledVersion string   `json:"installed_version"`
	Arch             string   `json:"arch,omitempty"`
	SourceName       string   `json:"source_name,omitempty"`
	SourceVersion    string   `json:"source_version,omitempty"`
	State            string   `json:"state"`
	FixedVersion     string   `json:"fixed_version,omitempty"`
	Severity         string   `json:"severity"`
	UpstreamSeverity string   `json:"upstream_severity,omitempty"`
	Namespace        string   `json:"namespace"`
	DataSource       string   `json:"data_source"`
	Layer            string   `json:"layer,omitempty"`
	Title            string   `json:"title,omitempty"`
	Link             string   `json:"link,omitempty"`
}

// New assembles a Scan from an index report and its findings.
func New(r *index.Report, findings []model.Finding, warnings []string) *Scan {
	s := &Scan{
		Schema:       Schema,
		Image:        Image{Ref: r.Image, ID: r.ImageID, ManifestDigest: r.Manifest, Layers: r.Layers},
		Distribution: r.Distribution,
		Packages:     r.Packages,
		Summary:      map[string]int{},
		Warnings:     append(append([]string(nil), r.Warnings...), warnings...),
	}
	if s.Packages == nil {
		s.Packages = []model.Package{}
	}
	s.Vulnerabilities = []Vulnerability{}
	for _, f := range findings {
		p, a := f.Package, f.Advisory
		s.Vulnerabilities = append(s.Vulnerabilities, Vulnerability{
			ID: a.ID, Aliases: a.Aliases, Package: p.Name, InstalledVersion: p.Version, Arch: p.Arch,
			SourceName: p.SourceName, SourceVersion: p.SourceVersion, State: a.State, FixedVersion: a.FixedVersion,
			Severity: a.Severity, UpstreamSeverity: a.UpstreamSeverity, Namespace: a.Namespace, DataSource: a.Source,
			Layer: p.Layer, Title: a.Title, Link: a.Link,
		})
		s.Summary[a.Severity]++
	}
	return s
}

// Filter keeps the findings at or above severity min (a model.Severity*
// name; "" keeps all) and, when fixedOnly, only those with a fix.
func (s *Scan) Filter(min string, fixedOnly bool) {
	rank := model.SeverityRank(min)
	kept := s.Vulnerabilities[:0]
	summary := map[string]int{}
	for _, v := range s.Vulnerabilities {
		if model.SeverityRank(v.Severity) < rank || (fixedOnly && v.State != model.StateFixed) {
			continue
		}
		kept = append(kept, v)
		summary[v.Severity]++
	}
	s.Vulnerabilities, s.Summary = kept, summary
}

// JSON writes the scan as indented JSON.
func JSON(w io.Writer, s *Scan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// Table writes the findings as a table, then totals per severity.
func Table(w io.Writer, s *Scan) error {
	os := "unknown OS"
	if s.Distribution != nil {
		os = s.Distribution.PrettyName
		if os == "" {
			os = s.Distribution.ID + " " + s.Distribution.VersionID
		}
		if s.Distribution.Namespace != "" {
			os += " [" + s.Distribution.Namespace + "]"
		}
	}
	fmt.Fprintf(w, "%s (%s): %d packages, %d layers\n\n", s.Image.Ref, os, len(s.Packages), len(s.Image.Layers))
	layerNo := map[string]int{}
	for i, l := range s.Image.Layers {
		layerNo[l.DiffID] = i + 1
		if l.DiffID == "" {
			layerNo[l.Digest] = i + 1
		}
	}
	if len(s.Vulnerabilities) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PACKAGE\tINSTALLED\tFIXED\tVULNERABILITY\tSEVERITY\tLAYER")
		for _, v := range s.Vulnerabilities {
			fixed := v.FixedVersion
			if v.State != model.StateFixed {
				fixed = "(" + v.State + ")"
			}
			layer := "-"
			if n, ok := layerNo[v.Layer]; ok {
				layer = fmt.Sprintf("%d %s", n, short(v.Layer))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Package, v.InstalledVersion, fixed, v.ID, v.Severity, layer)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	var parts []string
	total := 0
	for i := len(model.Severities) - 1; i >= 0; i-- {
		sev := model.Severities[i]
		parts = append(parts, fmt.Sprintf("%s: %d", sev, s.Summary[sev]))
		total += s.Summary[sev]
	}
	fmt.Fprintf(w, "Total: %d (%s)\n", total, strings.Join(parts, ", "))
	if len(s.Warnings) > 0 {
		sort.Strings(s.Warnings)
		fmt.Fprintf(w, "\nWarnings:\n")
		for _, m := range s.Warnings {
			fmt.Fprintf(w, "  - %s\n", m)
		}
	}
	return nil
}

func short(digest string) string {
	_, hex, ok := strings.Cut(digest, ":")
	if !ok {
		hex = digest
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}
