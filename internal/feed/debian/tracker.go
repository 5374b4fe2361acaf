package debian

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/vigil-scanner/vigil/internal/feed"
	"github.com/vigil-scanner/vigil/internal/model"
)

const (
	trackerName  = "debian-tracker"
	trackerURL   = "https://security-tracker.debian.org/tracker/data/json"
	trackerLink  = "https://security-tracker.debian.org/tracker/"
	notAffected  = "0" // fixed_version of a release that never had the bug
	urgencyEOL   = "end-of-life"
	urgencyUnimp = "unimportant"
)

// urgencies maps the tracker's urgencies (NVD markers cut) to severities.
var urgencies = map[string]string{
	urgencyUnimp:       model.SeverityNegligible,
	"low":              model.SeverityLow,
	"medium":           model.SeverityMedium,
	"high":             model.SeverityHigh,
	"not yet assigned": model.SeverityUnknown,
	urgencyEOL:         model.SeverityUnknown,
}

type tracker struct{}

// NewTracker returns the Debian security tracker JSON feed.
func NewTracker() feed.Feed { return tracker{} }

func (tracker) Name() string   { return trackerName }
func (tracker) URLs() []string { return []string{trackerURL} }

// Sniff accepts a JSON object whose first member is an object keyed by a
// CVE- or TEMP- id. When head ends after the opening brace but before that
// can be told, it falls back to the name: one ending in "json" (before any
// compression suffix) is accepted.
func (tracker) Sniff(name string, head []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(head))
	shape := []func(json.Token) bool{
		func(t json.Token) bool { return t == json.Delim('{') },
		func(t json.Token) bool { _, ok := t.(string); return ok },
		func(t json.Token) bool { return t == json.Delim('{') },
		func(t json.Token) bool {
			s, _ := t.(string)
			return strings.HasPrefix(s, "CVE-") || strings.HasPrefix(s, "TEMP-")
		},
	}
	for i, ok := range shape {
		tok, err := dec.Token()
		if err != nil {
			ended := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
			return i > 0 && ended && hasSuffixName(name, "json")
		}
		if !ok(tok) {
			return false
		}
	}
	return true
}

// hasSuffixName reports whether name, less a compression suffix, ends in
// suffix.
func hasSuffixName(name, suffix string) bool {
	base := strings.ToLower(path.Base(name))
	for _, ext := range []string{".gz", ".bz2", ".xz", ".zst"} {
		base = strings.TrimSuffix(base, ext)
	}
	return strings.HasSuffix(base, suffix)
}

type trackerIssue struct {
	Description string          `json:"description"`
	Releases    trackerReleases `json:"releases"`
}

type trackerRelease struct {
	Status       string  `json:"status"`
	FixedVersion *string `json:"fixed_version"`
	Urgency      string  `json:"urgency"`
	NoDSA        string  `json:"nodsa"`
	NoDSAReason  string  `json:"nodsa_reason"`
}

// trackerReleases is the releases member: an object keyed by codename, or
// an empty array (the tracker's form of an empty set).
type trackerReleases map[string]trackerRelease

func (t *trackerReleases) UnmarshalJSON(b []byte) error {
	if b := bytes.TrimSpace(b); len(b) > 0 && b[0] == '[' {
		var a []json.RawMessage
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		if len(a) > 0 {
			return errors.New("releases: a non-empty array, want an object")
		}
		*t = nil
		return nil
	}
	return json.Unmarshal(b, (*map[string]trackerRelease)(t))
}

// Parse streams the tracker document, one issue object at a time.
func (tracker) Parse(ctx context.Context, name string, r io.Reader, emit func(model.Advisory) error) (string, error) {
	br := &budgetReader{r: r}
	dec := json.NewDecoder(br)
	fail := func(where string, err error) (string, error) {
		return "", fmt.Errorf("debian tracker: %s%w", where, err)
	}
	if err := expectDelim(dec, '{'); err != nil {
		return fail("document: ", err)
	}
	for dec.More() {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		br.mark(dec.InputOffset())
		pkg, err := key(dec)
		if err != nil {
			return fail("package name: ", err)
		}
		where := "package " + quoteIfOdd(pkg) + ": "
		if err := checkName("name", pkg); err != nil {
			return fail(where, err)
		}
		if err := expectDelim(dec, '{'); err != nil {
			return fail(where, err)
		}
		for dec.More() {
			br.mark(dec.InputOffset())
			id, err := key(dec)
			if err != nil {
				return fail(where+"issue id: ", err)
			}
			if err := checkName("issue id", id); err != nil {
				return fail(where, err)
			}
			var is trackerIssue
			if err := dec.Decode(&is); err != nil {
				return fail(where+id+": ", unexpectedEOF(err))
			}
			if err := emitIssue(pkg, id, &is, emit); err != nil {
				return fail(where+id+": ", err)
			}
		}
		if err := expectDelim(dec, '}'); err != nil {
			return fail(where, err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return fail("document: ", err)
	}
	br.mark(dec.InputOffset())
	if tok, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = fmt.Errorf("unexpected %v", tok)
		}
		return fail("after the document: ", err)
	}
	return trackerName, nil
}

// emitIssue emits one advisory per release of a known codename, in codename
// order.
func emitIssue(pkg, id string, is *trackerIssue, emit func(model.Advisory) error) error {
	for _, codename := range slices.Sorted(maps.Keys(is.Releases)) {
		ns, ok := Namespace(codename)
		if !ok {
			continue
		}
		a, err := trackerAdvisory(pkg, id, ns, is.Releases[codename])
		if err != nil {
			return fmt.Errorf("release %s: %w", quoteIfOdd(codename), err)
		}
		a.Description = is.Description
		if err := emit(a); err != nil {
			return err
		}
	}
	return nil
}

func trackerAdvisory(pkg, id, ns string, rel trackerRelease) (model.Advisory, error) {
	a := model.Advisory{
		Source: trackerName, ID: id, Namespace: ns, Package: pkg,
		SourcePackage: true, VersionFormat: model.KindDpkg,
		UpstreamSeverity: rel.Urgency, Link: trackerLink + id,
	}
	urgency := strings.TrimRight(rel.Urgency, "*")
	a.Severity = model.SeverityUnknown
	if rel.Urgency != "" {
		sev, ok := urgencies[urgency]
		if !ok {
			return a, fmt.Errorf("urgency: unknown value %q", rel.Urgency)
		}
		a.Severity = sev
	}
	switch rel.Status {
	case "resolved":
		if rel.FixedVersion == nil {
			return a, errors.New(`status "resolved" without fixed_version`)
		}
		v := *rel.FixedVersion
		if err := checkName("fixed_version", v); err != nil {
			return a, err
		}
		if v == notAffected {
			a.State = model.StateNotAffected
		} else {
			a.State, a.FixedVersion = model.StateFixed, v
		}
	case "open", "undetermined":
		switch {
		case urgency == urgencyEOL:
			a.State = model.StateEndOfLife
		case urgency == urgencyUnimp:
			a.State = model.StateUnimportant
		case rel.NoDSAReason == "ignored":
			a.State = model.StateWontFix
		case rel.NoDSAReason == "postponed":
			a.State = model.StateDeferred
		case rel.NoDSAReason == "":
			a.State = model.StateUnfixed
		default:
			return a, fmt.Errorf("nodsa_reason: unknown value %q", rel.NoDSAReason)
		}
	default:
		return a, fmt.Errorf("status: unknown value %q", rel.Status)
	}
	return a, nil
}

// key reads an object member name.
func key(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", unexpectedEOF(err)
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("unexpected %v, want a member name", tok)
	}
	return s, nil
}

// expectDelim reads one delimiter token.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return unexpectedEOF(err)
	}
	if tok != d {
		return fmt.Errorf("unexpected %v, want %q", tok, string(d))
	}
	return nil
}

// quoteIfOdd quotes s (shortened) when it is not a plain name, for messages.
func quoteIfOdd(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%q…", s[:80])
	}
	if checkName("", s) != nil {
		return fmt.Sprintf("%q", s)
	}
	return s
}
