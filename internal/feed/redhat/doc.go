// Package redhat reads Red Hat's vulnerability data into advisories keyed by
// binary rpm name (model.KindRPM versions, fixed versions as the upstream's
// [epoch:]version-release, the epoch kept as given).
//
// OVAL (feed "redhat-oval"; v1 com.redhat.rhsa-RHELn.xml and v2
// rhel-n[-including-unpatched].oval.xml) is read by ParseOVAL, which Oracle's
// ELSA OVAL shares: each definition's criteria are expanded to disjunctive
// normal form and every conjunction gives one advisory per rpminfo test in it.
// "P is earlier than EVR" is fixed in EVR, for the arches of the state's arch
// pattern; "P is installed" (class vulnerability) is affected, in the state
// the definition's <resolution> gives P ("Affected" unfixed, "Will not fix",
// "Fix deferred", "Out of support scope" end-of-life, "Under investigation"
// unfixed); "P is installed" with "P is not installed" (the "Unaffected
// components" definitions) is not-affected. The guard "Red Hat Enterprise
// Linux N is installed" gives the namespace rhel:N; "Red Hat Enterprise
// Linux must be installed" (check "none satisfy", true only where RHEL is
// absent) drops its branch; "Module N:S is enabled" sets Module. Signature,
// running-kernel, boot-entry and "kernel version equals" tests count as true.
// ID is the RHSA/RHBA/RHEA reference (or the CVE for vulnerability
// definitions), Aliases the other CVEs, Severity from <severity>
// (Low/Moderate/Important/Critical → Low/Medium/High/Critical; "None" is
// Unknown). Scope: redhat-oval/<kind>/rhel-<major>.
//
// CSAF 2.0 (feed "redhat-csaf"): per-CVE VEX documents (scope
// redhat-vex/<CVE>, ID the CVE, Aliases the RHSA of the vendor_fix) and RHSA
// advisories (scope redhat-csaf/<RHSA>, ID the RHSA, Aliases its CVEs, fixed
// products only). Product ids are platform:component relationships; only
// platforms whose CPE is cpe:/[ao]:redhat:enterprise_linux:N (BaseOS,
// AppStream, CRB… of RHEL N) are read, as rhel:N: EUS/AUS/E4S streams
// (rhel_eus CPEs), layered products and containers are left out. The rpm is
// taken from the component's purl (name, version, epoch, arch, rpmmod →
// Module name:stream). product_status fixed → fixed in the product's EVR,
// merged over arches; where one namespace has several fixed versions of a
// package (the 9.2.0.Z and 9.3.0.Z streams) the newest is kept, so a package
// fixed only in an older minor's z-stream is still reported. known_affected →
// unfixed, or will-not-fix (remediation no_fix_planned), end-of-life
// (no_fix_planned "Out of support scope"), fix-deferred (none_available "Fix
// deferred"); known_not_affected → not-affected; under_investigation →
// unfixed. Unversioned components whose purl says arch=src are source rpm
// names and are emitted with SourcePackage set. Severity from the product's
// impact threat, else the document's aggregate severity. A deleted document
// (tracking.status "deleted") emits nothing, for its scope; as an ordinary
// import the store refuses that over a scope holding advisories
// (store.ErrShrunk) and keeps the old data, whereas a withdrawal listed in
// the set's deletions.csv empties the scope.
//
// Upstream layout and verification. The CSAF feed's URL,
// security.access.redhat.com/data/csaf/v2/vex/, is a document set (CSAF.Set,
// feed.Set; csaf/v2/advisories/ has the same layout): archive_latest.txt
// names the latest archive (csaf_vex_YYYY-MM-DD.tar.zst, a zstd tar whose
// members are YYYY/cve-YYYY-NNNN.json), every file F has its sha256 in
// F.sha256, and changes.csv and deletions.csv list ("path","time", newest
// first) the documents changed and withdrawn. A document's scope follows
// from its path (2023/cve-2023-6212.json → redhat-vex/CVE-2023-6212), and
// the scope redhat-vex/changes.csv records how far the change logs have
// been applied (origin fragment: the newest change time). The OVAL v2
// documents (data/oval/v2/RHELn/…oval.xml.bz2) are listed with their sha256
// and size in data/oval/v2/PULP_MANIFEST ("path,sha256,size" lines, the path
// relative to the manifest; ParsePulpManifest), which OVAL.Manifest and
// OVAL.ChecksumOf give internal/update to check each download against: a
// document the manifest does not list is refused. OVAL v1 files (under
// data/oval/, outside v2) have no manifest and are not checked.
package redhat
