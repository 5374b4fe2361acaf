package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/vigil-scanner/vigil/internal/model"
)

// Scope describes one imported upstream document.
type Scope struct {
	Scope      string `json:"scope"`
	Source     string `json:"source"`
	Origin     string `json:"origin"` // file or URL it came from
	Digest     string `json:"digest"` // sha256 of the document as read
	Advisories int    `json:"advisories"`
	ImportedAt int64  `json:"imported_at"` // Unix seconds
}

// ErrShrunk is returned (wrapped) when an import would replace a scope's
// data with much less of it; see ImportOptions.MaxShrink.
var ErrShrunk = errors.New("feed shrank")

// ImportOptions bound what an import may replace.
type ImportOptions struct {
	// MaxShrink is the largest fraction (0..1) by which a scope's advisory
	// count may fall in one import; beyond it the import is refused and the
	// old data kept. An empty document never replaces a non-empty scope.
	// Zero means no limit other than the empty-document rule.
	MaxShrink float64
	// Digest, when set, gives the digest of the document once fill has
	// read it; it is stored instead of the Digest of meta.
	Digest func() string
	// Withdraw marks a document the upstream withdrew: the scope may be
	// emptied or shrink without limit.
	Withdraw bool
}

// Import replaces every advisory of one scope with those fill puts, in one
// transaction: if fill fails, or the result is refused, nothing changes.
// fill streams a parse while the transaction is open and returns the scope
// the document covers (known only once it is read); the advisories are
// written under a provisional scope and moved to that one at the end. meta
// gives the Source, Origin and Digest of the document; its Scope is ignored.
func (s *Store) Import(ctx context.Context, meta Scope, opt ImportOptions, fill func(put func(model.Advisory) error) (string, error)) (Scope, error) {
	sc := meta
	err := s.tx(ctx, func(tx *sql.Tx) error {
		pending := fmt.Sprintf("importing/%d/%d", now(), rand.Int64())
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO feed_scope (scope, source, origin, digest, advisories, imported_at) VALUES (?, ?, ?, ?, 0, ?)`),
			pending, sc.Source, sc.Origin, sc.Digest, now()); err != nil {
			return err
		}
		w, err := s.newAdvisoryWriter(ctx, tx, pending)
		if err != nil {
			return err
		}
		defer w.close()
		scope, err := fill(w.put)
		if err != nil {
			return err
		}
		if scope == "" {
			return errors.New("the document names no scope")
		}
		sc.Scope, sc.Advisories, sc.ImportedAt = scope, w.n, now()
		if opt.Digest != nil {
			sc.Digest = opt.Digest()
		}
		if s.dialect == Postgres {
			// Serialise imports of one scope, so the second replaces the
			// first's committed rows instead of colliding with them
			// (SQLite's write transactions are already serial).
			if _, err := tx.ExecContext(ctx, s.q(`SELECT pg_advisory_xact_lock(hashtext('vigil-scope:' || ?))`), scope); err != nil {
				return fmt.Errorf("lock scope %s: %w", scope, err)
			}
		}
		var old int
		err = tx.QueryRowContext(ctx, s.q(`SELECT advisories FROM feed_scope WHERE scope = ?`), scope).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if old > 0 && w.n == 0 && !opt.Withdraw {
			return fmt.Errorf("%w: %s had %d advisories and the new document has none; keeping the old data", ErrShrunk, scope, old)
		}
		if opt.MaxShrink > 0 && !opt.Withdraw && old > 0 && float64(old-w.n) > opt.MaxShrink*float64(old) {
			return fmt.Errorf("%w: %s would fall from %d to %d advisories (more than %.0f%%); keeping the old data", ErrShrunk, scope, old, w.n, opt.MaxShrink*100)
		}
		if err := s.deleteScope(ctx, tx, scope); err != nil {
			return err
		}
		for _, q := range []string{
			`UPDATE vulnerability SET scope = ? WHERE scope = ?`,
			`UPDATE feed_scope SET scope = ? WHERE scope = ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.q(q), scope, pending); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE feed_scope SET advisories = ?, imported_at = ?, digest = ? WHERE scope = ?`), w.n, sc.ImportedAt, sc.Digest, scope)
		return err
	})
	if err != nil {
		return Scope{}, err
	}
	return sc, nil
}

// deleteScope removes a scope and its advisories.
func (s *Store) deleteScope(ctx context.Context, tx *sql.Tx, scope string) error {
	for _, q := range []string{
		`DELETE FROM affected WHERE vuln IN (SELECT id FROM vulnerability WHERE scope = ?)`,
		`DELETE FROM vulnerability WHERE scope = ?`,
		`DELETE FROM feed_scope WHERE scope = ?`,
	} {
		if _, err := tx.ExecContext(ctx, s.q(q), scope); err != nil {
			return fmt.Errorf("clear scope %s: %w", scope, err)
		}
	}
	return nil
}

// advisoryWriter inserts advisories of one scope, storing each
// vulnerability's text once however many packages it affects.
type advisoryWriter struct {
	ctx       context.Context
	tx        *sql.Tx
	scope     string
	vulnIDs   map[string]int64
	insVuln   *sql.Stmt
	insAffect *sql.Stmt
	n         int
}

func (s *Store) newAdvisoryWriter(ctx context.Context, tx *sql.Tx, scope string) (*advisoryWriter, error) {
	insVuln, err := tx.PrepareContext(ctx, s.q(`INSERT INTO vulnerability (scope, name, aliases, title, description, link) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`))
	if err != nil {
		return nil, err
	}
	insAffect, err := tx.PrepareContext(ctx, s.q(`INSERT INTO affected (vuln, namespace, package, source_package, version_format, state, fixed_version, arch, module, severity, upstream_severity)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
	if err != nil {
		insVuln.Close()
		return nil, err
	}
	return &advisoryWriter{ctx: ctx, tx: tx, scope: scope, vulnIDs: map[string]int64{}, insVuln: insVuln, insAffect: insAffect}, nil
}

func (w *advisoryWriter) close() {
	w.insVuln.Close()
	w.insAffect.Close()
}

func (w *advisoryWriter) put(a model.Advisory) error {
	if err := validAdvisory(a); err != nil {
		return fmt.Errorf("scope %s: %w", w.scope, err)
	}
	id, ok := w.vulnIDs[a.ID]
	if !ok {
		aliases, _ := json.Marshal(a.Aliases)
		if err := w.insVuln.QueryRowContext(w.ctx, w.scope, a.ID, string(aliases), a.Title, a.Description, a.Link).Scan(&id); err != nil {
			return fmt.Errorf("store %s: %w", a.ID, err)
		}
		w.vulnIDs[a.ID] = id
	}
	if _, err := w.insAffect.ExecContext(w.ctx, id, a.Namespace, a.Package, a.SourcePackage, a.VersionFormat, a.State,
		a.FixedVersion, strings.Join(a.Arch, ","), a.Module, a.Severity, a.UpstreamSeverity); err != nil {
		return fmt.Errorf("store %s %s: %w", a.ID, a.Package, err)
	}
	w.n++
	return nil
}

func validAdvisory(a model.Advisory) error {
	switch {
	case a.ID == "":
		return errors.New("advisory without an id")
	case a.Namespace == "" || a.Package == "":
		return fmt.Errorf("advisory %s without a namespace or package", a.ID)
	case a.VersionFormat == "":
		return fmt.Errorf("advisory %s (%s) without a version format", a.ID, a.Package)
	case a.State == model.StateFixed && a.FixedVersion == "":
		return fmt.Errorf("advisory %s (%s) is fixed but names no fixed version", a.ID, a.Package)
	}
	return nil
}

// Advisories returns the advisories of the given namespaces that name any
// of the given packages (source or binary names alike; the matcher decides
// which applies).
func (s *Store) Advisories(ctx context.Context, namespaces, packages []string) ([]model.Advisory, error) {
	var out []model.Advisory
	const batch = 400
	for i := 0; i < len(packages); i += batch {
		names := packages[i:min(i+batch, len(packages))]
		query := `SELECT fs.source, v.name, v.aliases, v.title, v.description, v.link,
			a.namespace, a.package, a.source_package, a.version_format, a.state, a.fixed_version, a.arch, a.module, a.severity, a.upstream_severity
			FROM affected a JOIN vulnerability v ON v.id = a.vuln JOIN feed_scope fs ON fs.scope = v.scope
			WHERE a.namespace IN (` + placeholders(len(namespaces)) + `) AND a.package IN (` + placeholders(len(names)) + `)
			ORDER BY v.name, a.package, fs.source`
		args := make([]any, 0, len(namespaces)+len(names))
		for _, ns := range namespaces {
			args = append(args, ns)
		}
		for _, n := range names {
			args = append(args, n)
		}
		rows, err := s.db.QueryContext(ctx, s.q(query), args...)
		if err != nil {
			return nil, fmt.Errorf("query advisories: %w", err)
		}
		for rows.Next() {
			var a model.Advisory
			var aliases, arch string
			if err := rows.Scan(&a.Source, &a.ID, &aliases, &a.Title, &a.Description, &a.Link,
				&a.Namespace, &a.Package, &a.SourcePackage, &a.VersionFormat, &a.State, &a.FixedVersion, &arch, &a.Module, &a.Severity, &a.UpstreamSeverity); err != nil {
				rows.Close()
				return nil, err
			}
			if aliases != "" && aliases != "null" {
				if err := json.Unmarshal([]byte(aliases), &a.Aliases); err != nil {
					rows.Close()
					return nil, fmt.Errorf("advisory %s: aliases: %w", a.ID, err)
				}
			}
			if arch != "" {
				a.Arch = strings.Split(arch, ",")
			}
			out = append(out, a)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func placeholders(n int) string {
	if n == 0 {
		return "NULL"
	}
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// Scopes lists the imported documents.
func (s *Store) Scopes(ctx context.Context) ([]Scope, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT scope, source, origin, digest, advisories, imported_at FROM feed_scope ORDER BY scope`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Scope
	for rows.Next() {
		var sc Scope
		if err := rows.Scan(&sc.Scope, &sc.Source, &sc.Origin, &sc.Digest, &sc.Advisories, &sc.ImportedAt); err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}
