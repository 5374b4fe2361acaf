// Package model is vigil's shared vocabulary: the values that flow between
// the pipeline stages (image → layer → detect → catalog → store ← feed →
// match → report). It holds plain data only; no stage logic lives here.
package model

// Distribution identifies the operating system of an image, as read from its
// release files (os-release and friends).
type Distribution struct {
	ID              string   `json:"id"`                         // os-release ID: debian, ubuntu, alpine, rhel, centos, ol, ...
	IDLike          []string `json:"id_like,omitempty"`          // os-release ID_LIKE
	Name            string   `json:"name,omitempty"`             // os-release NAME
	VersionID       string   `json:"version_id,omitempty"`       // os-release VERSION_ID: "12", "3.11.5", "8.9"
	VersionCodename string   `json:"version_codename,omitempty"` // bookworm, jammy, ...
	PrettyName      string   `json:"pretty_name,omitempty"`      // os-release PRETTY_NAME
	CPE             string   `json:"cpe,omitempty"`              // os-release CPE_NAME, when present
	Namespace       string   `json:"namespace,omitempty"`        // Clair namespace: debian:12, ubuntu:22.04, alpine:v3.11, rhel:9, ...
	Source          string   `json:"source,omitempty"`           // file the identity was read from
}

// Package kinds: the package database a Package was read from. They double
// as the version formats of those packages (see internal/version).
const (
	KindDpkg = "dpkg"
	KindRPM  = "rpm"
	KindAPK  = "apk"
)

// Package is one installed package as its package database records it.
type Package struct {
	Kind          string `json:"kind"`    // KindDpkg, KindRPM, KindAPK
	Name          string `json:"name"`    // binary package name
	Version       string `json:"version"` // full version in the kind's own syntax (rpm: [epoch:]version-release)
	Arch          string `json:"arch,omitempty"`
	SourceName    string `json:"source_name,omitempty"`    // dpkg Source, apk origin, rpm source rpm name
	SourceVersion string `json:"source_version,omitempty"` // dpkg source version; rpm source rpm version-release
	Module        string `json:"module,omitempty"`         // rpm modularity label, name:stream:version:context
	DBPath        string `json:"db_path,omitempty"`        // database file it was read from, inside the image
	Layer         string `json:"layer,omitempty"`          // diff ID of the layer that introduced it (set by the indexer)
}

// Advisory states, the upstream meaning kept: a feed parser maps its own
// vocabulary onto these and documents the mapping.
const (
	StateFixed       = "fixed"        // fixed in FixedVersion; older versions are affected
	StateUnfixed     = "unfixed"      // affected, no fix released yet (Debian "open", Ubuntu "needed", Red Hat "affected")
	StateNotAffected = "not-affected" // never affected (Debian fixed_version "0"); never reported
	StateWontFix     = "will-not-fix" // affected, vendor will not fix (Red Hat "Will not fix", Debian "ignored")
	StateDeferred    = "fix-deferred" // affected, fix postponed (Red Hat "Fix deferred", Debian "postponed")
	StateUnimportant = "unimportant"  // affected but judged unimportant by the vendor (Debian urgency "unimportant")
	StateEndOfLife   = "end-of-life"  // affected, release or package no longer supported (Debian "end-of-life")
)

// Normalized severities, Clair's scale.
const (
	SeverityUnknown    = "Unknown"
	SeverityNegligible = "Negligible"
	SeverityLow        = "Low"
	SeverityMedium     = "Medium"
	SeverityHigh       = "High"
	SeverityCritical   = "Critical"
)

// Severities lists the normalized severities from least to most severe.
var Severities = []string{SeverityUnknown, SeverityNegligible, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// SeverityRank orders a normalized severity on Severities (Unknown is 0);
// anything else ranks as Unknown.
func SeverityRank(s string) int {
	for i, v := range Severities {
		if v == s {
			return i
		}
	}
	return 0
}

// Advisory is one statement of a feed about one package in one namespace:
// "package P of namespace N is affected by vulnerability ID, in state S,
// fixed in version F".
type Advisory struct {
	Source           string   `json:"source"`            // feed that said it: debian-tracker, debian-oval, alpine-secdb, ...
	ID               string   `json:"id"`                // CVE-…, DSA-…, RHSA-…, USN-…, ALSA-…
	Aliases          []string `json:"aliases,omitempty"` // other ids of the same issue (the CVEs of a DSA)
	Namespace        string   `json:"namespace"`         // Clair namespace of the release it applies to (debian:12, alpine:v3.11, ...)
	Package          string   `json:"package"`           // affected package name, as the feed keys it
	SourcePackage    bool     `json:"source_package"`    // Package names a source package (Debian, Ubuntu, apk origin), not a binary one
	VersionFormat    string   `json:"version_format"`    // comparator: KindDpkg, KindRPM, KindAPK
	State            string   `json:"state"`             // one of the State* constants
	FixedVersion     string   `json:"fixed_version,omitempty"`
	Arch             []string `json:"arch,omitempty"`              // binary architectures it applies to; empty means all
	Module           string   `json:"module,omitempty"`            // rpm module stream name:stream it applies to; empty means non-modular
	Severity         string   `json:"severity"`                    // normalized severity (Severity* constants)
	UpstreamSeverity string   `json:"upstream_severity,omitempty"` // the feed's own word (urgency, priority, impact)
	Title            string   `json:"title,omitempty"`
	Description      string   `json:"description,omitempty"`
	Link             string   `json:"link,omitempty"`
}

// Finding is an installed package matched by an advisory.
type Finding struct {
	Package  Package  `json:"package"`
	Advisory Advisory `json:"advisory"`
}
