// Package storetest gives tests fresh databases of both dialects: a SQLite
// file in the test's temporary directory, and a new PostgreSQL database on
// the server named by $VIGIL_TEST_POSTGRES (a postgres:// URL of a role
// allowed to create databases; scripts/postgres.sh starts one), dropped when
// the test ends. Without the variable, PostgreSQL tests skip with a message
// saying how to run them.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// EnvPostgres names the environment variable holding the test server's URL.
const EnvPostgres = "VIGIL_TEST_POSTGRES"

// SQLite returns the path of a new SQLite database file.
func SQLite(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "vigil.db")
}

// Postgres returns the URL of a new, empty PostgreSQL database, dropped when
// t ends, or skips t when $VIGIL_TEST_POSTGRES is unset.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s to a postgres:// URL (eval \"$(scripts/postgres.sh start)\")", EnvPostgres)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgres, err)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgres, err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "vigil_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("create test database on %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// Dialects runs f as the subtests "sqlite" and "postgres", each with the DSN
// of a new database of that dialect.
func Dialects(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, Postgres(t)) })
}
