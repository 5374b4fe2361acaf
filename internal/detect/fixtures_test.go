package detect

// want is the expected identity of one fixture under osrelease/ of the shared
// test data, written from reading the fixture. The key of wants is the
// fixture's path: an image root (a folder holding etc/ or usr/), a bare
// release file (placed in the image at at) or a claircore txtar (its
// os-release section placed at etc/os-release).
type want struct {
	at                              string // bare files only: path inside the image
	none                            bool   // no OS is recognisable
	id, version, codename, ns, from string
}

const (
	osRel  = "etc/os-release"
	usrRel = "usr/lib/os-release"
	lsbRel = "etc/lsb-release"
)

var wants = map[string]want{
	// Alpine minirootfs and claircore release files: os-release.
	"alpine/20240923":      {id: "alpine", version: "3.21.0_alpha20240923", ns: "alpine:edge", from: osRel},
	"alpine/3.3-claircore": {id: "alpine", version: "3.3.3", ns: "alpine:v3.3", from: osRel},
	"alpine/3.4-claircore": {id: "alpine", version: "3.4.6", ns: "alpine:v3.4", from: osRel},
	"alpine/3.5-claircore": {id: "alpine", version: "3.5.3", ns: "alpine:v3.5", from: osRel},
	"alpine/3.6.5":         {id: "alpine", version: "3.6.5", ns: "alpine:v3.6", from: osRel},
	"alpine/3.7.3":         {id: "alpine", version: "3.7.3", ns: "alpine:v3.7", from: osRel},
	"alpine/3.8.5":         {id: "alpine", version: "3.8.5", ns: "alpine:v3.8", from: osRel},
	"alpine/3.9.6":         {id: "alpine", version: "3.9.6", ns: "alpine:v3.9", from: osRel},
	"alpine/3.10.9":        {id: "alpine", version: "3.10.9", ns: "alpine:v3.10", from: osRel},
	"alpine/3.11.13":       {id: "alpine", version: "3.11.13", ns: "alpine:v3.11", from: osRel},
	"alpine/3.12.12":       {id: "alpine", version: "3.12.12", ns: "alpine:v3.12", from: osRel},
	"alpine/3.13.12":       {id: "alpine", version: "3.13.12", ns: "alpine:v3.13", from: osRel},
	"alpine/3.14.10":       {id: "alpine", version: "3.14.10", ns: "alpine:v3.14", from: osRel},
	"alpine/3.15.11":       {id: "alpine", version: "3.15.11", ns: "alpine:v3.15", from: osRel},
	"alpine/3.16.9":        {id: "alpine", version: "3.16.9", ns: "alpine:v3.16", from: osRel},
	"alpine/3.17.10":       {id: "alpine", version: "3.17.10", ns: "alpine:v3.17", from: osRel},
	"alpine/3.18.9":        {id: "alpine", version: "3.18.9", ns: "alpine:v3.18", from: osRel},
	"alpine/3.19.4":        {id: "alpine", version: "3.19.4", ns: "alpine:v3.19", from: osRel},
	"alpine/3.20.3":        {id: "alpine", version: "3.20.3", ns: "alpine:v3.20", from: osRel},

	// Debian: 7 and 8 have no VERSION_CODENAME, distroless neither.
	"debian/7":                    {id: "debian", version: "7", codename: "wheezy", ns: "debian:7", from: osRel},
	"debian/8":                    {id: "debian", version: "8", codename: "jessie", ns: "debian:8", from: osRel},
	"debian/9":                    {id: "debian", version: "9", codename: "stretch", ns: "debian:9", from: osRel},
	"debian/10":                   {id: "debian", version: "10", codename: "buster", ns: "debian:10", from: osRel},
	"debian/11":                   {id: "debian", version: "11", codename: "bullseye", ns: "debian:11", from: osRel},
	"debian/12":                   {id: "debian", version: "12", codename: "bookworm", ns: "debian:12", from: osRel},
	"debian-distroless/9":         {id: "debian", version: "9", codename: "stretch", ns: "debian:9", from: osRel},
	"debian-distroless/10":        {id: "debian", version: "10", codename: "buster", ns: "debian:10", from: osRel},
	"debian-distroless/11":        {id: "debian", version: "11", codename: "bullseye", ns: "debian:11", from: osRel},
	"debian-debootstrap/bullseye": {id: "debian", version: "11", codename: "bullseye", ns: "debian:11", from: usrRel},
	"debian-debootstrap/bookworm": {id: "debian", version: "12", codename: "bookworm", ns: "debian:12", from: usrRel},
	"debian-debootstrap/trixie":   {id: "debian", version: "13", codename: "trixie", ns: "debian:13", from: usrRel},

	// Ubuntu: 10.04 has only lsb-release; 12.04–15.10 lack VERSION_CODENAME;
	// "11" is a Debian 11 os-release filed among claircore's Ubuntu samples.
	"ubuntu/10.04": {id: "ubuntu", version: "10.04", codename: "lucid", ns: "ubuntu:10.04", from: lsbRel},
	"ubuntu/11":    {id: "debian", version: "11", codename: "bullseye", ns: "debian:11", from: osRel},
	"ubuntu/12.04": {id: "ubuntu", version: "12.04", codename: "precise", ns: "ubuntu:12.04", from: osRel},
	"ubuntu/12.10": {id: "ubuntu", version: "12.10", codename: "quantal", ns: "ubuntu:12.10", from: osRel},
	"ubuntu/13.04": {id: "ubuntu", version: "13.04", codename: "raring", ns: "ubuntu:13.04", from: osRel},
	"ubuntu/13.10": {id: "ubuntu", version: "13.10", codename: "saucy", ns: "ubuntu:13.10", from: osRel},
	"ubuntu/14.04": {id: "ubuntu", version: "14.04", codename: "trusty", ns: "ubuntu:14.04", from: osRel},
	"ubuntu/14.10": {id: "ubuntu", version: "14.10", codename: "utopic", ns: "ubuntu:14.10", from: osRel},
	"ubuntu/15.04": {id: "ubuntu", version: "15.04", codename: "vivid", ns: "ubuntu:15.04", from: osRel},
	"ubuntu/15.10": {id: "ubuntu", version: "15.10", codename: "wily", ns: "ubuntu:15.10", from: osRel},
	"ubuntu/16.04": {id: "ubuntu", version: "16.04", codename: "xenial", ns: "ubuntu:16.04", from: osRel},
	"ubuntu/16.10": {id: "ubuntu", version: "16.10", codename: "yakkety", ns: "ubuntu:16.10", from: osRel},
	"ubuntu/17.04": {id: "ubuntu", version: "17.04", codename: "zesty", ns: "ubuntu:17.04", from: osRel},
	"ubuntu/17.10": {id: "ubuntu", version: "17.10", codename: "artful", ns: "ubuntu:17.10", from: osRel},
	"ubuntu/18.04": {id: "ubuntu", version: "18.04", codename: "bionic", ns: "ubuntu:18.04", from: osRel},
	"ubuntu/18.10": {id: "ubuntu", version: "18.10", codename: "cosmic", ns: "ubuntu:18.10", from: osRel},
	"ubuntu/19.04": {id: "ubuntu", version: "19.04", codename: "disco", ns: "ubuntu:19.04", from: osRel},
	"ubuntu/19.10": {id: "ubuntu", version: "19.10", codename: "eoan", ns: "ubuntu:19.10", from: osRel},
	"ubuntu/20.04": {id: "ubuntu", version: "20.04", codename: "focal", ns: "ubuntu:20.04", from: osRel},
	"ubuntu/20.10": {id: "ubuntu", version: "20.10", codename: "groovy", ns: "ubuntu:20.10", from: osRel},
	"ubuntu/21.04": {id: "ubuntu", version: "21.04", codename: "hirsute", ns: "ubuntu:21.04", from: osRel},
	"ubuntu/21.10": {id: "ubuntu", version: "21.10", codename: "impish", ns: "ubuntu:21.10", from: osRel},
	"ubuntu/22.04": {id: "ubuntu", version: "22.04", codename: "jammy", ns: "ubuntu:22.04", from: osRel},
	"ubuntu/22.10": {id: "ubuntu", version: "22.10", codename: "kinetic", ns: "ubuntu:22.10", from: osRel},
	"ubuntu/23.04": {id: "ubuntu", version: "23.04", codename: "lunar", ns: "ubuntu:23.04", from: osRel},
	"ubuntu/23.10": {id: "ubuntu", version: "23.10", codename: "mantic", ns: "ubuntu:23.10", from: osRel},
	// debian_version there reads trixie/sid; os-release must win.
	"ubuntu-debootstrap/24.04": {id: "ubuntu", version: "24.04", codename: "noble", ns: "ubuntu:24.04", from: usrRel},

	// RHEL family. rhel-family/7's redhat-release says 7.4; os-release (7.7) wins.
	"rhel-family/7":            {id: "rhel", version: "7.7", ns: "rhel:7", from: osRel},
	"rhel-family/8":            {id: "rhel", version: "8.1", ns: "rhel:8", from: osRel},
	"rhel-family/9":            {id: "rhel", version: "9.0", ns: "rhel:9", from: osRel},
	"rhel-family/atomichost-7": {id: "rhel", version: "7.9", ns: "rhel:7", from: osRel},
	"rhel-family/hummingbird":  {id: "hummingbird", version: "20251124", ns: "hummingbird:20251124", from: osRel},
	// Oracle Linux images also carry a redhat-release naming RHEL.
	"rhel-family/oracle-6": {id: "ol", version: "6.10", ns: "oracle:6", from: "etc/oracle-release"},
	"rhel-family/oracle-7": {id: "ol", version: "7.9", ns: "oracle:7", from: "etc/oracle-release"},
	"rhel-family/oracle-8": {id: "ol", version: "8.9", ns: "oracle:8", from: "etc/oracle-release"},
	"rhel-family/oracle-9": {id: "ol", version: "9.3", ns: "oracle:9", from: "etc/oracle-release"},

	// Trivy's debian analyzer samples.
	"trivy/debian/debian_9":   {id: "debian", version: "9.8", codename: "stretch", ns: "debian:9", from: "etc/debian_version"},
	"trivy/debian/debian_sid": {id: "debian", codename: "buster", ns: "debian:unstable", from: "etc/debian_version"},
	"trivy/debian/empty":      {at: "etc/debian_version", none: true},

	// Trivy's redhatbase analyzer samples.
	"trivy/redhatbase/alma/almalinux-release":   {at: "etc/almalinux-release", id: "almalinux", version: "8.4", ns: "alma:8", from: "etc/almalinux-release"},
	"trivy/redhatbase/centos/centos-release":    {at: "etc/centos-release", id: "centos", version: "7.6.1810", ns: "centos:7", from: "etc/centos-release"},
	"trivy/redhatbase/fedora_29/fedora-release": {at: "etc/fedora-release", id: "fedora", version: "29", ns: "fedora:29", from: "etc/fedora-release"},
	"trivy/redhatbase/not_redhatbase/empty":     {at: "etc/redhat-release", none: true},
	"trivy/redhatbase/oracle_7/oracle-release":  {at: "etc/oracle-release", id: "ol", version: "7.6", ns: "oracle:7", from: "etc/oracle-release"},
	// "Red Hat Linux release 6.2 (Zoot)" is pre-RHEL Red Hat Linux, not RHEL 6.
	"trivy/redhatbase/redhat_6/redhat-release": {at: "etc/redhat-release", id: "redhat-linux", version: "6.2", ns: "redhat-linux:6.2", from: "etc/redhat-release"},
	"trivy/redhatbase/rocky/rocky-release":     {at: "etc/rocky-release", id: "rocky", version: "8.4", ns: "rocky:8", from: "etc/rocky-release"},

	// Trivy's os-release samples.
	"trivy/release/activestate":    {at: osRel, id: "activestate", version: "1.0", ns: "activestate:1.0", from: osRel},
	"trivy/release/alma":           {at: osRel, id: "almalinux", version: "9.4", ns: "alma:9", from: osRel},
	"trivy/release/alpine":         {at: osRel, id: "alpine", version: "3.15.4", ns: "alpine:v3.15", from: osRel},
	"trivy/release/azurelinux-3.0": {at: osRel, id: "azurelinux", version: "3.0", ns: "azurelinux:3.0", from: osRel},
	"trivy/release/bottlerocket":   {at: osRel, id: "bottlerocket", version: "1.34.0", ns: "bottlerocket:1.34.0", from: osRel},
	"trivy/release/centos":         {at: osRel, id: "centos", version: "7", ns: "centos:7", from: osRel},
	"trivy/release/centos-stream":  {at: osRel, id: "centos", version: "8", ns: "centos-stream:8", from: osRel},
	"trivy/release/coreos":         {at: osRel, id: "coreos", version: "3.15.4", ns: "coreos:3.15.4", from: osRel},
	"trivy/release/echo":           {at: osRel, id: "echo", version: "1", ns: "echo:1", from: osRel},
	"trivy/release/fedora":         {at: osRel, id: "fedora", version: "42", ns: "fedora:42", from: osRel},
	"trivy/release/mariner-1.0":    {at: osRel, id: "mariner", version: "1.0", ns: "mariner:1.0", from: osRel},
	"trivy/release/mariner-2.0":    {at: osRel, id: "mariner", version: "2.0", ns: "mariner:2.0", from: osRel},
	"trivy/release/minimos":        {at: osRel, id: "minimos", version: "20241031", ns: "minimos:20241031", from: osRel},
	"trivy/release/no-id":          {at: osRel, none: true},
	// No VERSION_ID: the branch comes from PRETTY_NAME "Alpine Linux v3.15".
	"trivy/release/no-version":          {at: osRel, id: "alpine", ns: "alpine:v3.15", from: osRel},
	"trivy/release/opensuseleap-15.2.1": {at: osRel, id: "opensuse-leap", version: "15.2.1", ns: "opensuse-leap:15.2", from: osRel},
	"trivy/release/opensuseleap-42.3":   {at: osRel, id: "opensuse", version: "42.3", ns: "opensuse-leap:42.3", from: osRel},
	"trivy/release/opensusetumbleweed":  {at: osRel, id: "opensuse-tumbleweed", version: "20220412", ns: "opensuse-tumbleweed:20220412", from: osRel},
	"trivy/release/oracle":              {at: osRel, id: "ol", version: "8.10", ns: "oracle:8", from: osRel},
	"trivy/release/photon":              {at: osRel, id: "photon", version: "4.0", ns: "photon:4.0", from: osRel},
	"trivy/release/rhel":                {at: osRel, id: "rhel", version: "9.4", ns: "rhel:9", from: osRel},
	"trivy/release/rocky":               {at: osRel, id: "rocky", version: "9.3", ns: "rocky:9", from: osRel},
	"trivy/release/slemicro":            {at: osRel, id: "sle-micro", version: "5.3", ns: "sle-micro:5.3", from: osRel},
	"trivy/release/slemicro-rancher":    {at: osRel, id: "sle-micro-rancher", version: "5.4", ns: "sle-micro-rancher:5.4", from: osRel},
	"trivy/release/slemicro6.0":         {at: osRel, id: "sl-micro", version: "6.0", ns: "sl-micro:6.0", from: osRel},
	"trivy/release/sles":                {at: osRel, id: "sles", version: "15.3", ns: "sles:15.3", from: osRel},
	"trivy/release/unknown":             {at: osRel, id: "unknown", version: "4.3.2", ns: "unknown:4.3.2", from: osRel},
	"trivy/ubuntu/lsb-release":          {at: lsbRel, id: "ubuntu", version: "18.04", codename: "bionic", ns: "ubuntu:18.04", from: lsbRel},

	// claircore's os-release parser samples (they carry their own expected
	// parse, checked as well).
	"claircore-osrelease-txtar/Alpine.txtar":            {id: "alpine", version: "3.10.2", ns: "alpine:v3.10", from: osRel},
	"claircore-osrelease-txtar/Bionic.txtar":            {id: "ubuntu", version: "18.04", codename: "bionic", ns: "ubuntu:18.04", from: osRel},
	"claircore-osrelease-txtar/Buster.txtar":            {id: "debian", version: "10", codename: "buster", ns: "debian:10", from: osRel},
	"claircore-osrelease-txtar/DistrolessCorrupt.txtar": {id: "debian", version: "12", codename: "bookworm", ns: "debian:12", from: osRel},
	"claircore-osrelease-txtar/DistrolessValid.txtar":   {id: "debian", version: "12", codename: "bookworm", ns: "debian:12", from: osRel},
	"claircore-osrelease-txtar/EmptyKey.txtar":          {id: "fedora", version: "30", ns: "fedora:30", from: osRel},
	"claircore-osrelease-txtar/OpenSUSe.txtar":          {id: "opensuse-leap", version: "15.1", ns: "opensuse-leap:15.1", from: osRel},
	"claircore-osrelease-txtar/Silverblue.txtar":        {id: "fedora", version: "30", ns: "fedora:30", from: osRel},
	"claircore-osrelease-txtar/Toolbox.txtar":           {id: "fedora", version: "30", ns: "fedora:30", from: osRel},
	"claircore-osrelease-txtar/Ubi8.txtar":              {id: "rhel", version: "8.0", ns: "rhel:8", from: osRel},
	// VyOS is built on Debian bookworm but is not Debian: its own namespace.
	"claircore-osrelease-txtar/Vyos.txtar": {id: "vyos", version: "1.4-rolling-202307070317", codename: "bookworm", ns: "vyos:1.4-rolling-202307070317", from: osRel},
}
