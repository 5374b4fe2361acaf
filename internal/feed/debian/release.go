package debian

import "strings"

// releases maps every Debian codename to its namespace version, after
// distro-info-data's debian.csv. From etch (4.0) on, a codename is one
// major version, which is what os-release's VERSION_ID carries; the 1.x–3.x
// point releases had codenames of their own and keep the full number.
var releases = []struct{ codename, version string }{
	{"buzz", "1.1"}, {"rex", "1.2"}, {"bo", "1.3"},
	{"hamm", "2.0"}, {"slink", "2.1"}, {"potato", "2.2"},
	{"woody", "3.0"}, {"sarge", "3.1"},
	{"etch", "4"}, {"lenny", "5"}, {"squeeze", "6"},
	{"wheezy", "7"}, {"jessie", "8"}, {"stretch", "9"},
	{"buster", "10"}, {"bullseye", "11"}, {"bookworm", "12"},
	{"trixie", "13"}, {"forky", "14"}, {"duke", "15"},
	{"sid", "unstable"},
}

// Namespace returns the namespace ("debian:12", "debian:unstable") of a
// Debian release codename, case-insensitively; false for a codename it does
// not know.
func Namespace(codename string) (string, bool) {
	c := strings.ToLower(codename)
	for _, r := range releases {
		if r.codename == c {
			return "debian:" + r.version, true
		}
	}
	return "", false
}

// codenameOf returns the codename of a release version ("12" → bookworm).
func codenameOf(version string) (string, bool) {
	for _, r := range releases {
		if r.version == version {
			return r.codename, true
		}
	}
	return "", false
}
