// Package debian reads Debian's two vulnerability feeds into advisories.
// Both key advisories by SOURCE package (SourcePackage is true), compare
// with dpkg rules (VersionFormat "dpkg") and name releases by codename,
// mapped to the namespace "debian:<major version>" by Namespace (sid is
// "debian:unstable").
//
// # Security tracker JSON (NewTracker, scope "debian-tracker")
//
// https://security-tracker.debian.org/tracker/data/json is one object
// {source package: {issue id: {description, scope, debianbug, releases:
// {codename: {status, repositories, fixed_version, urgency, nodsa,
// nodsa_reason}}}}}. Every (package, issue, release) becomes one advisory:
//
//   - status "resolved", fixed_version "0": StateNotAffected (the release
//     never had the bug);
//   - status "resolved", fixed_version V: StateFixed in V; a resolved entry
//     without fixed_version is an error;
//   - status "open" or "undetermined" (the tracker cannot yet tell whether
//     the release is affected; it is reported as affected with no known
//     fix, unlike grype-vunnel, which drops it): urgency "end-of-life" gives
//     StateEndOfLife; else urgency "unimportant" gives StateUnimportant;
//     else nodsa_reason "ignored" gives StateWontFix and "postponed"
//     StateDeferred; anything else (including a plain nodsa, "minor issue,
//     may be fixed in a point release") is StateUnfixed.
//
// Urgency maps to severity once its trailing NVD markers ("*", "**") are
// cut: unimportant → Negligible, low → Low, medium → Medium, high → High,
// "not yet assigned", "end-of-life" or absent → Unknown; the raw word is
// kept as UpstreamSeverity. Unknown statuses, urgencies and nodsa reasons
// are errors rather than guesses. TEMP- ids (issues that have no CVE yet)
// are kept like CVE ids (grype-vunnel drops them, Clair keeps them): they
// are real tracker entries, often of real bugs. Releases whose codename
// Namespace does not know (a release newer than this table, or
// "experimental") are skipped without error. Links point to
// https://security-tracker.debian.org/tracker/<id>.
//
// The document is streamed: tokens down to the issue level, then one issue
// object at a time, each bounded in size (maxValueBytes).
//
// # OVAL (NewOVAL, scope "debian-oval/<codename>")
//
// https://www.debian.org/security/oval/oval-definitions-<codename>.xml(.bz2)
// holds one release's definitions (class "vulnerability", titled
// "CVE-… <package>", and class "patch", titled "DSA-…-… <package>"), then
// the tests, objects and states they reference. Each definition criterion
// that references a dpkginfo_test gives one advisory for the package named
// by the test's dpkginfo_object (a source package name), with the state's
// evr "less than" bound:
//
//   - "0:0": StateUnfixed. Debian's generator writes fixed version 0 for
//     every release where the tracker's status is not "resolved", and
//     leaves out resolved-not-affected releases entirely, so 0 here means
//     "affected, no fix yet", not "never affected";
//   - any other evr E: StateFixed in E, with a "0:" epoch removed (dpkg
//     compares "0:1.2" and "1.2" as equal); other epochs are kept.
//
// The advisory ID is the first word of the title (the CVE or DSA id);
// Aliases are the other reference ids (the CVEs of a DSA). Debian OVAL has
// no severity: Severity is Unknown. The release comes from the file name
// (oval-definitions-<codename>.xml) and from the definitions' platform
// ("Debian GNU/Linux 12"); they must agree. The release and architecture
// criteria (textfilecontent54, uname) are not turned into advisories: the
// namespace stands for the former and Debian only writes the "all
// architectures" form of the latter. The generator sometimes writes a
// package name that is not one ("None", "perl and libapache2-mod-perl2",
// "Request Tracker"); the definition's product stands in for it when it is a
// single valid package name, else the criterion is left out: no installed
// package could bear that name, so an OVAL interpreter would never match it
// either. Identical advisories from repeated definitions (common in the
// older files) are emitted once.
// Negated criteria, tests with another check_existence than
// "at_least_one_exists", and states other than a debian_evr_string "less
// than" bound are rejected as errors.
//
// OVAL lists definitions before the tests they reference, so a definition's
// metadata (ids, title, description, test refs) is kept until the document
// ends; nothing else of the document is held, and each token is bounded.
package debian
