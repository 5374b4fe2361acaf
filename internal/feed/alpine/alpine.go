// Package alpine reads the Alpine Linux security database ("secdb"): the
// JSON files published at https://secdb.alpinelinux.org/<branch>/<repo>.json
// and the YAML files of the retired alpinelinux/alpine-secdb git repository.
// Both carry the same document:
//
//	distroversion  the branch, "v3.11" or "edge" → Namespace "alpine:v3.11", "alpine:edge"
//	reponame       the repository, "main" or "community" → scope "alpine-secdb/<branch>/<repo>"
//	archs, urlprefix, apkurl   where the packages live (informational; ignored)
//	packages[].pkg.name        the ORIGIN (source) package name, as in APKBUILD
//	packages[].pkg.secfixes    map from a package version to the ids fixed in it
//
// The secfixes map is copied from the "# secfixes:" comment of each APKBUILD
// and is the only vulnerability data secdb has. Its rules:
//
//   - Each id listed under version V was fixed in V: origin packages older than
//     V are affected. It becomes an advisory in StateFixed with FixedVersion V.
//   - Ids listed under version "0" never affected the branch: StateNotAffected.
//   - Only fixed (and never-affected) issues are listed; secdb has no unfixed
//     issues and no severities, so every advisory has Severity Unknown.
//   - Names are origin names, so advisories set SourcePackage and match an
//     installed apk by its origin (the "o:" field of lib/apk/db/installed).
//     Versions are apk versions (VersionFormat "apk").
//
// The entries under a version are free text written by hand, and real files
// hold more than one bare CVE id per entry. Each entry is read as follows:
//
//   - Text in parentheses is a comment ("CVE-2018-14462 (ICMP)") and goes to
//     Description. A comment saying the package is "not affected" or "not
//     (actually) applicable" makes the entry StateNotAffected whatever the
//     version ("CVE-2020-14342 (not actually applicable)").
//   - The rest is split on white space. Every CVE id in it is a separate
//     advisory ("CVE-2017-5753 CVE-2017-5715 XSA-254"); the other ids in the
//     same entry (XSA-254, TALOS-2017-0488, GNUTLS-SA-…, GHSA-…) become its
//     Aliases. Common misspellings are repaired: "CVE_2019-2426" and
//     "CVE 2018-16859" read as CVE-2019-2426 and CVE-2018-16859, a
//     ".patch" or sub-issue suffix is dropped ("CVE-2017-17434-1" →
//     CVE-2017-17434).
//   - An entry with no CVE id ("XSA-207", "GHSA-fhpf-pp6p-55qc",
//     "RUSTSEC-2020-0146", "ALPINE-13661", "CVE-????-????? XSA-284") yields
//     one advisory per other id it names, under that id.
//   - Placeholders ("CVE-????-?????", "N/A") and words without a digit
//     ("XPTI") are not ids; words are kept in Description.
//   - An entry that names no id at all is an error, as is any other
//     malformed part of the document (missing distroversion or reponame, a
//     package without a name, a non-string id, truncated input).
//
// A null id list under a version (seen in the 2020 YAML) states nothing and
// yields no advisory. The same id under one version twice is emitted once;
// under two different versions it is emitted for both, as upstream says.
//
// Links point to https://security.alpinelinux.org/vuln/<CVE> for CVE ids.
// The JSON is decoded as a token stream, one package at a time; the YAML
// (legacy, at most a few hundred KiB upstream) is read whole, up to a bound.
// A truncated YAML document that still parses cannot be told from a complete
// one; JSON truncation is always detected.
package alpine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vigil-scanner/vigil/internal/feed"
	"github.com/vigil-scanner/vigil/internal/model"
)

// Name is the feed's source name.
const Name = "alpine-secdb"

// BaseURL is where secdb is published.
const BaseURL = "https://secdb.alpinelinux.org/"

// Limits on untrusted input.
const (
	maxYAMLBytes  = 64 << 20 // a legacy YAML document
	maxPackages   = 200000   // packages in one document
	maxEntryBytes = 4096     // one secfixes entry
)

// Branches lists the branches URLs fetches: every release branch from v3.2
// with secdb data, and edge.
var Branches = []string{
	"v3.2", "v3.3", "v3.4", "v3.5", "v3.6", "v3.7", "v3.8", "v3.9",
	"v3.10", "v3.11", "v3.12", "v3.13", "v3.14", "v3.15", "v3.16", "v3.17",
	"v3.18", "v3.19", "v3.20", "v3.21", "v3.22", "v3.23", "edge",
}

// Feed is the Alpine secdb feed. Its zero value is ready to use.
type Feed struct{}

var _ feed.Feed = Feed{}

// Name implements feed.Feed.
func (Feed) Name() string { return Name }

// URLs implements feed.Feed: main.json and community.json of every branch
// (v3.2 had no community repository in secdb).
func (Feed) URLs() []string {
	var urls []string
	for _, b := range Branches {
		urls = append(urls, BaseURL+b+"/main.json")
		if b != "v3.2" {
			urls = append(urls, BaseURL+b+"/community.json")
		}
	}
	return urls
}

var (
	jsonKeys = [][]byte{[]byte(`"apkurl"`), []byte(`"distroversion"`), []byte(`"reponame"`), []byte(`"urlprefix"`), []byte(`"secfixes"`)}
	yamlKeys = regexp.MustCompile(`(?m)^(apkurl|distroversion|reponame|urlprefix):`)
)

// Sniff implements feed.Feed: a secdb JSON object or YAML document, told by
// its top-level keys.
func (Feed) Sniff(name string, head []byte) bool {
	t := bytes.TrimLeft(head, " \t\r\n\ufeff")
	if len(t) > 0 && t[0] == '{' {
		for _, k := range jsonKeys {
			if bytes.Contains(t, k) {
				return true
			}
		}
		return false
	}
	return yamlKeys.Match(t)
}

// Parse implements feed.Feed. JSON is told from YAML by the first non-space
// byte ('{').
func (Feed) Parse(ctx context.Context, name string, r io.Reader, emit func(model.Advisory) error) (string, error) {
	br := newPeekReader(r)
	first, err := br.firstNonSpace()
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", Name, name, err)
	}
	p := &parser{ctx: ctx, name: name, emit: emit}
	if first == '{' {
		err = p.parseJSON(br)
	} else {
		err = p.parseYAML(br)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", Name, name, err)
	}
	return p.scope(), nil
}

// peekReader lets Parse look at the first non-space byte without losing it.
type peekReader struct {
	r   io.Reader
	buf []byte
}

func newPeekReader(r io.Reader) *peekReader { return &peekReader{r: r} }

func (p *peekReader) firstNonSpace() (byte, error) {
	var b [1]byte
	for {
		n, err := p.r.Read(b[:])
		if n == 1 {
			p.buf = append(p.buf, b[0])
			if !bytes.ContainsRune([]byte(" \t\r\n"), rune(b[0])) {
				return b[0], nil
			}
			if len(p.buf) > 1<<20 {
				return 0, errors.New("no document in the first MiB, only white space")
			}
			continue
		}
		if err == io.EOF {
			return 0, errors.New("empty document")
		}
		if err != nil {
			return 0, err
		}
	}
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// pkg is one packages[] element, secfixes in document order.
type pkg struct {
	name     string
	secfixes []fix
}

// fix is one version of a secfixes map with its entries (nil for null).
type fix struct {
	version string
	entries []string
}

type parser struct {
	ctx    context.Context
	name   string
	emit   func(model.Advisory) error
	branch string
	repo   string
}

func (p *parser) scope() string { return Name + "/" + p.branch + "/" + p.repo }

var branchRE = regexp.MustCompile(`^(v[0-9]+\.[0-9]+|edge)$`)
var repoRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

func (p *parser) setHeader(branch, repo string) error {
	if !branchRE.MatchString(branch) {
		return fmt.Errorf("distroversion %q is not a branch like v3.11 or edge", branch)
	}
	if !repoRE.MatchString(repo) {
		return fmt.Errorf("reponame %q is not a repository name like main", repo)
	}
	p.branch, p.repo = branch, repo
	return nil
}

func (p *parser) parseJSON(r io.Reader) error {
	dec := json.NewDecoder(r)
	at := func(err error) error { return fmt.Errorf("at byte %d: %w", dec.InputOffset(), err) }
	if err := expectDelim(dec, '{'); err != nil {
		return at(err)
	}
	var branch, repo string
	var haveBranch, haveRepo, havePackages bool
	var pending []pkg // packages read before the header was complete
	n := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return at(err)
		}
		key, _ := t.(string)
		switch key {
		case "distroversion", "reponame":
			var s string
			if err := dec.Decode(&s); err != nil {
				return at(fmt.Errorf("%s: %w", key, err))
			}
			if key == "distroversion" {
				branch, haveBranch = s, true
			} else {
				repo, haveRepo = s, true
			}
		case "packages":
			if havePackages {
				return at(errors.New("packages given twice"))
			}
			havePackages = true
			if haveBranch && haveRepo {
				if err := p.setHeader(branch, repo); err != nil {
					return at(err)
				}
			}
			t, err := dec.Token()
			if err != nil {
				return at(fmt.Errorf("packages: %w", err))
			}
			if t == nil {
				continue // "packages": null, nothing to say
			}
			if d, ok := t.(json.Delim); !ok || d != '[' {
				return at(fmt.Errorf("packages: want an array, got %v", t))
			}
			for dec.More() {
				if err := p.ctx.Err(); err != nil {
					return err
				}
				if n++; n > maxPackages {
					return at(fmt.Errorf("more than %d packages", maxPackages))
				}
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return at(fmt.Errorf("package %d: %w", n, err))
				}
				pk, err := decodeJSONPkg(raw)
				if err != nil {
					return at(fmt.Errorf("package %d: %w", n, err))
				}
				if p.branch == "" {
					pending = append(pending, pk)
					continue
				}
				if err := p.emitPkg(pk); err != nil {
					return at(err)
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return at(err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return at(fmt.Errorf("%s: %w", key, err))
			}
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return at(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return at(errors.New("data after the document"))
	}
	if !haveBranch || !haveRepo {
		return errors.New("document has no distroversion or no reponame")
	}
	if p.branch == "" {
		if err := p.setHeader(branch, repo); err != nil {
			return err
		}
	}
	for _, pk := range pending {
		if err := p.emitPkg(pk); err != nil {
			return err
		}
	}
	return nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return fmt.Errorf("want %q, got %v", want, t)
	}
	return nil
}

// decodeJSONPkg decodes {"pkg":{"name":…,"secfixes":{…}}}, keeping the
// secfixes keys in order (and repeated keys, which a map would lose).
func decodeJSONPkg(raw json.RawMessage) (pkg, error) {
	var outer struct {
		Pkg *struct {
			Name     *string         `json:"name"`
			Secfixes json.RawMessage `json:"secfixes"`
		} `json:"pkg"`
	}
	if err := json.Unmarshal(raw, &outer); err != nil {
		return pkg{}, err
	}
	if outer.Pkg == nil || outer.Pkg.Name == nil || *outer.Pkg.Name == "" {
		return pkg{}, errors.New("no pkg.name")
	}
	pk := pkg{name: *outer.Pkg.Name}
	sf := outer.Pkg.Secfixes
	if len(sf) == 0 || string(sf) == "null" {
		return pk, nil
	}
	dec := json.NewDecoder(bytes.NewReader(sf))
	if err := expectDelim(dec, '{'); err != nil {
		return pkg{}, fmt.Errorf("%s: secfixes: %w", pk.name, err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return pkg{}, fmt.Errorf("%s: secfixes: %w", pk.name, err)
		}
		ver := t.(string) // object keys are always strings
		var entries []string
		if err := dec.Decode(&entries); err != nil {
			return pkg{}, fmt.Errorf("%s: secfixes %q: want a list of strings: %w", pk.name, ver, err)
		}
		pk.secfixes = append(pk.secfixes, fix{version: ver, entries: entries})
	}
	return pk, nil
}

// yamlDoc is the legacy YAML layout; secfixes stays a node to keep its keys'
// text and order.
type yamlDoc struct {
	DistroVersion string `yaml:"distroversion"`
	RepoName      string `yaml:"reponame"`
	Packages      []struct {
		Pkg *struct {
			Name     string    `yaml:"name"`
			Secfixes yaml.Node `yaml:"secfixes"`
		} `yaml:"pkg"`
	} `yaml:"packages"`
}

func (p *parser) parseYAML(r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, maxYAMLBytes+1))
	if err != nil {
		return err
	}
	if len(data) > maxYAMLBytes {
		return fmt.Errorf("YAML document larger than %d bytes", maxYAMLBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yamlDoc
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return errors.New("YAML: more than one document")
	}
	if doc.DistroVersion == "" || doc.RepoName == "" {
		return errors.New("document has no distroversion or no reponame")
	}
	if err := p.setHeader(doc.DistroVersion, doc.RepoName); err != nil {
		return err
	}
	if len(doc.Packages) > maxPackages {
		return fmt.Errorf("more than %d packages", maxPackages)
	}
	for i, e := range doc.Packages {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		if e.Pkg == nil || e.Pkg.Name == "" {
			return fmt.Errorf("package %d: no pkg.name", i+1)
		}
		pk, err := yamlPkg(e.Pkg.Name, &e.Pkg.Secfixes)
		if err != nil {
			return fmt.Errorf("package %d: line %d: %w", i+1, e.Pkg.Secfixes.Line, err)
		}
		if err := p.emitPkg(pk); err != nil {
			return err
		}
	}
	return nil
}

func yamlPkg(name string, n *yaml.Node) (pkg, error) {
	pk := pkg{name: name}
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return pk, nil
	}
	if n.Kind != yaml.MappingNode {
		return pkg{}, fmt.Errorf("%s: secfixes is not a mapping", name)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return pkg{}, fmt.Errorf("%s: line %d: secfixes key is not a version", name, k.Line)
		}
		f := fix{version: k.Value}
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		case v.Kind == yaml.SequenceNode:
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
					return pkg{}, fmt.Errorf("%s: line %d: secfixes %q: entry is not text", name, e.Line, k.Value)
				}
				f.entries = append(f.entries, e.Value)
			}
		default:
			return pkg{}, fmt.Errorf("%s: line %d: secfixes %q: want a list of ids", name, v.Line, k.Value)
		}
		pk.secfixes = append(pk.secfixes, f)
	}
	return pk, nil
}

// emitPkg turns one package's secfixes into advisories.
func (p *parser) emitPkg(pk pkg) error {
	ns := "alpine:" + p.branch
	type key struct{ ver, id string }
	seen := map[key]bool{}
	for _, f := range pk.secfixes {
		if f.version == "" || strings.ContainsFunc(f.version, isSpaceOrControl) {
			return fmt.Errorf("%s: secfixes version %q is not a version", pk.name, f.version)
		}
		for _, raw := range f.entries {
			e, err := parseEntry(raw)
			if err != nil {
				return fmt.Errorf("%s: secfixes %q: %w", pk.name, f.version, err)
			}
			for _, id := range e.ids {
				if seen[key{f.version, id}] {
					continue
				}
				seen[key{f.version, id}] = true
				a := model.Advisory{
					Source:        Name,
					ID:            id,
					Aliases:       e.aliases,
					Namespace:     ns,
					Package:       pk.name,
					SourcePackage: true,
					VersionFormat: model.KindAPK,
					State:         model.StateFixed,
					FixedVersion:  f.version,
					Severity:      model.SeverityUnknown,
					Description:   e.comment,
				}
				if f.version == "0" || e.notAffected {
					a.State, a.FixedVersion = model.StateNotAffected, ""
				}
				if isCVE(id) {
					a.Link = "https://security.alpinelinux.org/vuln/" + id
				}
				if err := p.emit(a); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// entry is one secfixes string, read.
type entry struct {
	ids         []string // advisory ids: its CVEs, or else its other ids
	aliases     []string // other ids beside CVEs
	comment     string   // parenthesised text and stray words
	notAffected bool     // the comment says the package is not affected
}

var (
	cveLooseRE    = regexp.MustCompile(`^(?i)CVE[-_]([0-9]{4})-([0-9]{4,})(-[0-9]+|\.patch)?$`)
	cveNumberRE   = regexp.MustCompile(`^[0-9]{4}-[0-9]{4,}$`)
	otherIDRE     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*([-_][A-Za-z0-9]+)*$`)
	notAffectedRE = regexp.MustCompile(`(?i)\bnot\s+(affected|(actually\s+)?applicable)\b`)
)

// parseEntry reads one secfixes entry by the rules in the package comment.
func parseEntry(raw string) (entry, error) {
	var e entry
	if isCVE(raw) { // the common case, without regexps
		e.ids = []string{raw}
		return e, nil
	}
	if len(raw) > maxEntryBytes {
		return e, fmt.Errorf("entry longer than %d bytes", maxEntryBytes)
	}
	text, comments := splitComments(raw)
	var cves, others []string
	fields := strings.Fields(text)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		switch {
		case strings.EqualFold(f, "CVE") && i+1 < len(fields) && cveNumberRE.MatchString(fields[i+1]):
			cves = append(cves, "CVE-"+fields[i+1])
			i++
		case strings.EqualFold(f, "CVE") && i+1 < len(fields) && fields[i+1] == "N/A", f == "N/A":
			if f != "N/A" {
				i++
			}
		case cveLooseRE.MatchString(f):
			m := cveLooseRE.FindStringSubmatch(f)
			cves = append(cves, "CVE-"+m[1]+"-"+m[2])
		case strings.Contains(f, "?"):
			// a placeholder such as CVE-????-?????
		case otherIDRE.MatchString(f) && strings.ContainsAny(f, "0123456789"):
			others = append(others, f)
		default:
			comments = append(comments, f)
		}
	}
	cves, others = dedupe(cves), dedupe(others)
	if len(cves) > 0 {
		e.ids, e.aliases = cves, others
	} else {
		e.ids = others
	}
	if len(e.ids) == 0 {
		return e, fmt.Errorf("entry %q names no vulnerability id", raw)
	}
	e.comment = strings.Join(comments, " ")
	e.notAffected = notAffectedRE.MatchString(e.comment)
	return e, nil
}

// isCVE reports whether s is exactly a CVE id, CVE-YYYY-NNNN….
func isCVE(s string) bool {
	rest, ok := strings.CutPrefix(s, "CVE-")
	if !ok || len(rest) < 9 || rest[4] != '-' {
		return false
	}
	for i := range len(rest) {
		if i != 4 && (rest[i] < '0' || rest[i] > '9') {
			return false
		}
	}
	return true
}

// splitComments removes parenthesised text from s and returns it apart. An
// unclosed parenthesis runs to the end.
func splitComments(s string) (string, []string) {
	var rest strings.Builder
	var comments []string
	for {
		i := strings.IndexByte(s, '(')
		if i < 0 {
			rest.WriteString(s)
			break
		}
		rest.WriteString(s[:i])
		rest.WriteByte(' ')
		j := strings.IndexByte(s[i:], ')')
		if j < 0 {
			comments = append(comments, strings.TrimSpace(s[i+1:]))
			break
		}
		comments = append(comments, strings.TrimSpace(s[i+1:i+j]))
		s = s[i+j+1:]
	}
	return rest.String(), comments
}

func dedupe(ids []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
