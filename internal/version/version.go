// Package version orders package versions by each ecosystem's own rules;
// the subpackages hold one comparator each (dpkg, rpm, apk).
package version

// Comparator orders versions of one format.
type Comparator interface {
	// Compare returns -1, 0 or +1 as a is older than, equal to or newer than
	// b. It returns an error when either side is not a valid version, as
	// the ecosystem's own tool would refuse it.
	Compare(a, b string) (int, error)
	// Valid returns nil when v is a version the ecosystem's tool accepts.
	Valid(v string) error
}
