// Package store keeps vigil's state in SQL: the per-layer index cache, the
// per-image index reports and the advisories imported from feeds. SQLite
// (modernc.org/sqlite, WAL, busy timeout) is the embedded default; a
// postgres:// URL selects PostgreSQL (pgx) with the same schema and
// migrations.
//
// Rules kept here:
//   - Advisories are imported per scope (one upstream document): ReplaceScope
//     swaps a scope's rows in one transaction, so a failed or interrupted
//     import leaves the previous data answering queries.
//   - The layer cache is keyed by the layer's diff ID and the indexer version,
//     so a layer is indexed once per indexer version, whichever image holds it.
//   - Schema migrations are numbered and applied in a write transaction, so
//     several processes opening one new database at once all succeed.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Dialect is the SQL flavour of a Store.
type Dialect int

// The supported SQL flavours.
const (
	SQLite Dialect = iota
	Postgres
)

// Store is an open vigil database.
type Store struct {
	db      *sql.DB
	dialect Dialect
	where   string // what was opened, for messages (never a password)
}

// DefaultPath is the embedded database's default location: vigil/vigil.db
// in the user's cache directory.
func DefaultPath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory for the default database (use --db): %w", err)
	}
	return filepath.Join(dir, "vigil", "vigil.db"), nil
}

// Open opens (creating and migrating as needed) the database named by dsn: a
// postgres:// or postgresql:// URL, or else a SQLite file path.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var s *Store
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(16)
		s = &Store{db: db, dialect: Postgres, where: redactURL(dsn)}
	} else {
		if dir := filepath.Dir(dsn); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("database %s: %w", dsn, err)
			}
		}
		// busy_timeout first, so that switching to WAL waits for other openers.
		q := "?_pragma=busy_timeout(60000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
		db, err := sql.Open("sqlite", "file:"+dsn+q)
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", dsn, err)
		}
		s = &Store{db: db, dialect: SQLite, where: dsn}
	}
	if err := s.migrateRetrying(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("database %s: %w", s.where, err)
	}
	return s, nil
}

// migrateRetrying migrates, retrying while SQLite answers "busy" without
// waiting: when several processes create one database at once, switching
// it to WAL or recovering its WAL index can fail at once instead of going
// through the busy timeout. It gives up after a minute.
func (s *Store) migrateRetrying(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		err := s.migrate(ctx)
		if err == nil || s.dialect != SQLite || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// isBusy reports SQLite's SQLITE_BUSY and SQLITE_LOCKED (any extended code).
func isBusy(err error) bool {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		c := coded.Code() & 0xff
		return c == 5 || c == 6
	}
	return false
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB exposes the database handle, for checks that need raw SQL (tests of
// integrity and concurrency).
func (s *Store) DB() *sql.DB { return s.db }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// q rewrites a query written with ? placeholders for the store's dialect.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// tx runs fn in a write transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	return u[:scheme+3] + "…" + u[at:]
}

func now() int64 { return time.Now().Unix() }

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")
