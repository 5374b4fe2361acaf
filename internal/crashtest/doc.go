// Package crashtest holds subprocess tests of the vigil command: it is
// built once, then killed with SIGKILL in the middle of a feed import and of
// indexing, and run many times at once on one SQLite database, to check
// that no interruption loses or corrupts stored data and that the next run
// finishes the work. The package has no code of its own.
package crashtest
