package detect

import (
	"reflect"
	"testing"
)

func TestAptParsers(t *testing.T) {
	oneLine, err := parseSourcesList([]byte(`# deb http://commented.example bookworm main
deb [ arch=amd64 signed-by=/k.gpg ] http://a.example/debian bookworm main contrib
deb-src	http://b.example/debian	bookworm-updates main # trailing
deb [unclosed http://c.example/debian bookworm main
deb http://d.example/debian
rpm http://e.example/x y z
deb http://f.example/flat ./
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []aptEntry{
		{uri: "http://a.example/debian", suite: "bookworm"},
		{uri: "http://b.example/debian", suite: "bookworm-updates"},
		{uri: "http://f.example/flat", suite: "./"},
	}
	if !reflect.DeepEqual(oneLine, want) {
		t.Errorf("parseSourcesList = %+v\nwant %+v", oneLine, want)
	}

	deb822, err := parseDeb822Sources([]byte(`# comment
Types: deb deb-src
URIs: http://a.example/debian
 http://b.example/debian
Suites:
 trixie trixie-updates
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 -----END PGP PUBLIC KEY BLOCK-----

Types: deb
Enabled: No
URIs: http://c.example/debian
Suites: sid

Types: rpm
URIs: http://d.example/x
Suites: y
  
Types: deb
URIs: http://e.example/debian
Suites: bookworm`))
	if err != nil {
		t.Fatal(err)
	}
	want = []aptEntry{
		{uri: "http://a.example/debian", suite: "trixie"},
		{uri: "http://a.example/debian", suite: "trixie-updates"},
		{uri: "http://b.example/debian", suite: "trixie"},
		{uri: "http://b.example/debian", suite: "trixie-updates"},
		{uri: "http://e.example/debian", suite: "bookworm"},
	}
	if !reflect.DeepEqual(deb822, want) {
		t.Errorf("parseDeb822Sources = %+v\nwant %+v", deb822, want)
	}
}

func TestSuiteRelease(t *testing.T) {
	for _, tc := range []struct{ suite, id, codename string }{
		{"bookworm", "debian", "bookworm"},
		{"Bookworm-Security", "debian", "bookworm"},
		{"buster/updates", "debian", "buster"},
		{"bullseye-backports-sloppy", "debian", "bullseye"},
		{"unstable", "debian", "sid"},
		{"sid", "debian", "sid"},
		{"testing-updates", "debian", ""},
		{"jammy-security", "ubuntu", "jammy"},
		{"noble", "ubuntu", "noble"},
	} {
		id, c, ok := suiteRelease(tc.suite)
		if !ok || id != tc.id || c != tc.codename {
			t.Errorf("suiteRelease(%q) = %q, %q, %v", tc.suite, id, c, ok)
		}
	}
	for _, s := range []string{"stable", "oldstable", "devel", "experimental", "./", "", "bookwormx"} {
		if id, c, ok := suiteRelease(s); ok {
			t.Errorf("suiteRelease(%q) = %q, %q; want none", s, id, c)
		}
	}
}
