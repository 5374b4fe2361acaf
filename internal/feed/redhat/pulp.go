package redhat

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/vigil-scanner/vigil/internal/feed"
)

// maxManifestLines bounds a PULP_MANIFEST (the OVAL v2 one has a few
// hundred lines).
const maxManifestLines = 100_000

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Manifest implements feed.Checksummed: a document under an oval/v2/
// directory is listed in that directory's PULP_MANIFEST.
func (OVAL) Manifest(u string) (string, bool) {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" {
		return "", false
	}
	i := strings.LastIndex(p.Path, "/oval/v2/")
	if i < 0 {
		return "", false
	}
	p.Path = p.Path[:i] + "/oval/v2/PULP_MANIFEST"
	p.RawPath, p.RawQuery, p.Fragment = "", "", ""
	return p.String(), true
}

// ChecksumOf implements feed.Checksummed: the manifest's entry for u's
// path relative to the manifest's directory.
func (OVAL) ChecksumOf(manifest io.Reader, manifestURL, u string) (feed.Checksum, error) {
	m, err := url.Parse(manifestURL)
	if err != nil {
		return feed.Checksum{}, err
	}
	d, err := url.Parse(u)
	if err != nil {
		return feed.Checksum{}, err
	}
	dir := m.Path[:strings.LastIndexByte(m.Path, '/')+1]
	rel, ok := strings.CutPrefix(d.Path, dir)
	if !ok || d.Host != m.Host {
		return feed.Checksum{}, fmt.Errorf("%s is not under the directory of %s", u, manifestURL)
	}
	entries, err := ParsePulpManifest(manifest)
	if err != nil {
		return feed.Checksum{}, fmt.Errorf("%s: %w", manifestURL, err)
	}
	sum, ok := entries[rel]
	if !ok {
		return feed.Checksum{}, fmt.Errorf("%s lists no %s", manifestURL, rel)
	}
	return sum, nil
}

// ParsePulpManifest reads a Pulp file-repository manifest: one
// "path,sha256,size" line per file, the path relative to the manifest's
// directory. A malformed or repeated line is an error naming its number.
func ParsePulpManifest(r io.Reader) (map[string]feed.Checksum, error) {
	out := map[string]feed.Checksum{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if n > maxManifestLines {
			return nil, fmt.Errorf("PULP_MANIFEST: more than %d lines", maxManifestLines)
		}
		f := strings.Split(line, ",")
		if len(f) != 3 {
			return nil, fmt.Errorf("PULP_MANIFEST line %d: want path,sha256,size", n)
		}
		path, sum := f[0], strings.ToLower(f[1])
		size, err := strconv.ParseInt(f[2], 10, 64)
		switch {
		case path == "" || strings.HasPrefix(path, "/"):
			return nil, fmt.Errorf("PULP_MANIFEST line %d: bad path %q", n, path)
		case !sha256Hex.MatchString(sum):
			return nil, fmt.Errorf("PULP_MANIFEST line %d: %s: bad sha256 %q", n, path, f[1])
		case err != nil || size < 0:
			return nil, fmt.Errorf("PULP_MANIFEST line %d: %s: bad size %q", n, path, f[2])
		}
		if _, dup := out[path]; dup {
			return nil, fmt.Errorf("PULP_MANIFEST line %d: %s listed twice", n, path)
		}
		out[path] = feed.Checksum{SHA256: sum, Size: size}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("PULP_MANIFEST: %w", err)
	}
	return out, nil
}
