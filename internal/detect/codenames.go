package detect

import "strings"

// release is one row of a codename table: the version number and the
// lowercase codename (distro-info-data's "series").
type release struct{ version, codename string }

// debianReleases mirrors distro-info-data's debian.csv for every numbered
// release. sid and experimental have no number and are not listed.
var debianReleases = []release{
	{"1.1", "buzz"}, {"1.2", "rex"}, {"1.3", "bo"}, {"2.0", "hamm"},
	{"2.1", "slink"}, {"2.2", "potato"}, {"3.0", "woody"}, {"3.1", "sarge"},
	{"4.0", "etch"}, {"5.0", "lenny"}, {"6.0", "squeeze"}, {"7", "wheezy"},
	{"8", "jessie"}, {"9", "stretch"}, {"10", "buster"}, {"11", "bullseye"},
	{"12", "bookworm"}, {"13", "trixie"}, {"14", "forky"}, {"15", "duke"},
}

// ubuntuReleases mirrors distro-info-data's ubuntu.csv (the " LTS" suffix of
// its version column dropped).
var ubuntuReleases = []release{
	{"4.10", "warty"}, {"5.04", "hoary"}, {"5.10", "breezy"}, {"6.06", "dapper"},
	{"6.10", "edgy"}, {"7.04", "feisty"}, {"7.10", "gutsy"}, {"8.04", "hardy"},
	{"8.10", "intrepid"}, {"9.04", "jaunty"}, {"9.10", "karmic"}, {"10.04", "lucid"},
	{"10.10", "maverick"}, {"11.04", "natty"}, {"11.10", "oneiric"}, {"12.04", "precise"},
	{"12.10", "quantal"}, {"13.04", "raring"}, {"13.10", "saucy"}, {"14.04", "trusty"},
	{"14.10", "utopic"}, {"15.04", "vivid"}, {"15.10", "wily"}, {"16.04", "xenial"},
	{"16.10", "yakkety"}, {"17.04", "zesty"}, {"17.10", "artful"}, {"18.04", "bionic"},
	{"18.10", "cosmic"}, {"19.04", "disco"}, {"19.10", "eoan"}, {"20.04", "focal"},
	{"20.10", "groovy"}, {"21.04", "hirsute"}, {"21.10", "impish"}, {"22.04", "jammy"},
	{"22.10", "kinetic"}, {"23.04", "lunar"}, {"23.10", "mantic"}, {"24.04", "noble"},
	{"24.10", "oracular"}, {"25.04", "plucky"}, {"25.10", "questing"}, {"26.04", "resolute"},
	{"26.10", "stonking"},
}

func lookupCodename(table []release, codename string) (string, bool) {
	codename = strings.ToLower(strings.TrimSpace(codename))
	for _, r := range table {
		if r.codename == codename {
			return r.version, true
		}
	}
	return "", false
}

func lookupVersion(table []release, version string) (string, bool) {
	for _, r := range table {
		if r.version == version {
			return r.codename, true
		}
	}
	return "", false
}

// DebianVersion returns the version number of a Debian codename ("bookworm"
// → "12", "squeeze" → "6.0"), case-insensitively. sid and experimental have
// none.
func DebianVersion(codename string) (string, bool) {
	return lookupCodename(debianReleases, codename)
}

// DebianCodename returns the codename of a Debian version. It accepts the
// table's own numbers ("12", "6.0") and point releases as debian_version
// writes them ("12.15", "6.0.10", "3.1r8"): from Debian 7 on the major number
// names the release, before it major.minor does.
func DebianCodename(version string) (string, bool) {
	version = strings.TrimSpace(version)
	if c, ok := lookupVersion(debianReleases, version); ok {
		return c, true
	}
	major, rest, _ := strings.Cut(version, ".")
	if c, ok := lookupVersion(debianReleases, major); ok {
		return c, true
	}
	// Before Debian 7 the release is major.minor, with point releases
	// written "6.0.10" or "3.1r8".
	minor := strings.TrimLeft(rest, "0123456789")
	minor = rest[:len(rest)-len(minor)]
	if minor == "" {
		return "", false
	}
	return lookupVersion(debianReleases, major+"."+minor)
}

// UbuntuVersion returns the YY.MM version of an Ubuntu codename ("jammy" →
// "22.04"), case-insensitively.
func UbuntuVersion(codename string) (string, bool) {
	return lookupCodename(ubuntuReleases, codename)
}

// UbuntuCodename returns the codename of an Ubuntu version; point releases
// ("18.04.6") and an " LTS" suffix are accepted.
func UbuntuCodename(version string) (string, bool) {
	version, _, _ = strings.Cut(strings.TrimSpace(version), " ")
	if c, ok := lookupVersion(ubuntuReleases, version); ok {
		return c, true
	}
	major, rest, ok := strings.Cut(version, ".")
	if !ok {
		return "", false
	}
	minor, _, _ := strings.Cut(rest, ".")
	return lookupVersion(ubuntuReleases, major+"."+minor)
}
