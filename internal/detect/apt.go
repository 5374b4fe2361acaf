package detect

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strings"
)

// aptEntry is one repository apt reads: a URI and a suite ("bookworm",
// "jammy-security", "buster/updates"), and the file that lists it.
type aptEntry struct {
	uri, suite, file string
}

// parseSourcesList reads the one-line format of sources.list and
// sources.list.d/*.list: "deb [options] uri suite [component...]" (or
// deb-src). Text from "#" on is a comment. A line apt would not take as a
// repository (another type, too few fields, unclosed options) adds nothing.
func parseSourcesList(data []byte) ([]aptEntry, error) {
	var out []aptEntry
	err := eachLine(data, func(line string) {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		i := strings.IndexAny(line, " \t")
		if i < 0 || line[:i] != "deb" && line[:i] != "deb-src" {
			return
		}
		rest := strings.TrimSpace(line[i:])
		if strings.HasPrefix(rest, "[") {
			_, after, ok := strings.Cut(rest, "]")
			if !ok {
				return
			}
			rest = after
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			return
		}
		out = append(out, aptEntry{uri: f[0], suite: f[1]})
	})
	return out, err
}

// parseDeb822Sources reads the deb822 format of sources.list.d/*.sources:
// stanzas of "Field: value" lines separated by blank lines, where a line
// starting with a blank continues the field above and "#" starts a comment
// line. Field names are case-insensitive. Each stanza whose Types include deb
// or deb-src and that is not "Enabled: no" gives one entry per URI and suite.
func parseDeb822Sources(data []byte) ([]aptEntry, error) {
	var out []aptEntry
	fields := map[string]string{}
	var last string
	flush := func() {
		types := strings.Fields(fields["types"])
		if (slices.Contains(types, "deb") || slices.Contains(types, "deb-src")) &&
			!strings.EqualFold(strings.TrimSpace(fields["enabled"]), "no") {
			for _, u := range strings.Fields(fields["uris"]) {
				for _, s := range strings.Fields(fields["suites"]) {
					out = append(out, aptEntry{uri: u, suite: s})
				}
			}
		}
		clear(fields)
		last = ""
	}
	err := eachLine(data, func(line string) {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == '#':
		case line[0] == ' ' || line[0] == '\t':
			if _, ok := fields[last]; ok {
				fields[last] += " " + strings.TrimSpace(line)
			}
		default:
			name, value, ok := strings.Cut(line, ":")
			last = strings.ToLower(strings.TrimSpace(name))
			if !ok || !wantedDeb822Field(last) {
				last = ""
				return
			}
			fields[last] = strings.TrimSpace(value)
		}
	})
	flush()
	return out, err
}

// wantedDeb822Field limits what a stanza keeps to the fields Detect uses, so
// an embedded Signed-By key is not accumulated.
func wantedDeb822Field(name string) bool {
	switch name {
	case "types", "uris", "suites", "enabled":
		return true
	}
	return false
}

// eachLine calls fn for every line of data (without its line ending).
func eachLine(data []byte, fn func(string)) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxLine)
	for sc.Scan() {
		fn(strings.TrimSuffix(sc.Text(), "\r"))
	}
	return lineError(sc.Err())
}

// aptSources reads every apt sources file of fsys, in apt's order
// (sources.list, then sources.list.d/*.list and *.sources by name), and
// returns their entries.
func aptSources(fsys fs.FS) ([]aptEntry, error) {
	var names []string
	for _, p := range aptPatterns[1:] {
		m, err := fs.Glob(fsys, p)
		if err != nil {
			return nil, err
		}
		names = append(names, m...)
	}
	if len(names) > maxSourcesDir {
		return nil, fmt.Errorf("etc/apt/sources.list.d: %d files, more than the %d allowed", len(names), maxSourcesDir)
	}
	slices.Sort(names)
	names = append([]string{aptPatterns[0]}, names...)

	var entries []aptEntry
	for _, name := range names {
		data, ok, err := readFile(fsys, name, maxSourcesFile)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		parse := parseSourcesList
		if strings.HasSuffix(name, ".sources") {
			parse = parseDeb822Sources
		}
		got, err := parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, e := range got {
			e.file = name
			entries = append(entries, e)
		}
	}
	return entries, nil
}

// aptPatterns are the files apt reads its repositories from.
var aptPatterns = []string{
	"etc/apt/sources.list",
	"etc/apt/sources.list.d/*.list",
	"etc/apt/sources.list.d/*.sources",
}

// suiteRelease names the release a suite belongs to: its base (the part
// before the first "-" or "/", so "bookworm-security" and "buster/updates"
// count as bookworm and buster), looked up in the Debian and Ubuntu tables.
// sid and unstable are Debian unstable; testing is Debian testing, whose
// codename the caller must find elsewhere. Other aliases (stable, oldstable,
// devel) change meaning over time and are not recognised.
func suiteRelease(suite string) (id, codename string, ok bool) {
	base := strings.ToLower(suite)
	if i := strings.IndexAny(base, "-/"); i >= 0 {
		base = base[:i]
	}
	switch {
	case base == "sid" || base == "unstable":
		return "debian", "sid", true
	case base == "testing":
		return "debian", "", true
	}
	if _, ok := DebianVersion(base); ok {
		return "debian", base, true
	}
	if _, ok := UbuntuVersion(base); ok {
		return "ubuntu", base, true
	}
	return "", "", false
}

// officialArchive reports whether uri points at a Debian or Ubuntu archive
// host (*.debian.org, *.ubuntu.com).
func officialArchive(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	for _, d := range []string{"debian.org", "ubuntu.com"} {
		if h == d || strings.HasSuffix(h, "."+d) {
			return true
		}
	}
	return false
}
