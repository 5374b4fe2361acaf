package ubuntu

// releases maps every Ubuntu series codename to its version number, from
// distro-info-data's ubuntu.csv.
var releases = map[string]string{
	"warty": "4.10", "hoary": "5.04", "breezy": "5.10", "dapper": "6.06",
	"edgy": "6.10", "feisty": "7.04", "gutsy": "7.10", "hardy": "8.04",
	"intrepid": "8.10", "jaunty": "9.04", "karmic": "9.10", "lucid": "10.04",
	"maverick": "10.10", "natty": "11.04", "oneiric": "11.10", "precise": "12.04",
	"quantal": "12.10", "raring": "13.04", "saucy": "13.10", "trusty": "14.04",
	"utopic": "14.10", "vivid": "15.04", "wily": "15.10", "xenial": "16.04",
	"yakkety": "16.10", "zesty": "17.04", "artful": "17.10", "bionic": "18.04",
	"cosmic": "18.10", "disco": "19.04", "eoan": "19.10", "focal": "20.04",
	"groovy": "20.10", "hirsute": "21.04", "impish": "21.10", "jammy": "22.04",
	"kinetic": "22.10", "lunar": "23.04", "mantic": "23.10", "noble": "24.04",
	"oracular": "24.10", "plucky": "25.04", "questing": "25.10", "resolute": "26.04",
}

// Namespace returns the namespace of an Ubuntu series codename ("jammy" →
// "ubuntu:22.04") and whether the codename is known.
func Namespace(codename string) (string, bool) {
	v, ok := releases[codename]
	if !ok {
		return "", false
	}
	return "ubuntu:" + v, true
}

// Supported lists the series whose CVE OVAL URLs fetches: the LTS releases
// under standard or ESM support, for which Canonical publishes OVAL.
var Supported = []string{"xenial", "bionic", "focal", "jammy", "noble", "resolute"}
