package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"

	"github.com/vigil-scanner/vigil/internal/model"
)

// clairLayersSchema holds Clair v1's named layers (migration 2): each layer's
// index result under the client's name, with a parent pointer whose
// ON DELETE CASCADE removes a layer's descendants with it; and the Clair
// fields of vulnerabilities created through the API (scope "api/<ns>"),
// which the vulnerability table has no columns for.
const clairLayersSchema = `CREATE TABLE clair_layer (
		name       TEXT PRIMARY KEY,
		parent     TEXT REFERENCES clair_layer(name) ON DELETE CASCADE,
		indexer    TEXT NOT NULL,
		result     {{blob}} NOT NULL,
		indexed_at BIGINT NOT NULL
	);
	CREATE INDEX clair_layer_parent ON clair_layer (parent);
	CREATE TABLE clair_vulnerability (
		vuln     BIGINT PRIMARY KEY REFERENCES vulnerability(id) ON DELETE CASCADE,
		severity TEXT NOT NULL,
		metadata TEXT NOT NULL
	);
	CREATE INDEX vulnerability_name ON vulnerability (name);`

// ErrParentUnknown is returned when a Clair layer names a parent that is
// not stored.
var ErrParentUnknown = errors.New("parent layer is unknown, it must be processed first")

// ClairLayer is a layer posted to Clair's v1 API, stored by its name.
type ClairLayer struct {
	Name      string
	Parent    string // "" for a base layer
	Indexer   string // index.Version that produced Result
	Result    []byte // JSON of the layer's index.Result
	IndexedAt int64  // Unix seconds
}

// maxAncestry bounds the parent chain followed (images hold at most 127
// layers; the bound only guards the recursive query).
const maxAncestry = 4096

// ClairLayer returns the stored layer called name, or ErrNotFound.
func (s *Store) ClairLayer(ctx context.Context, name string) (ClairLayer, error) {
	var l ClairLayer
	var parent sql.NullString
	err := s.db.QueryRowContext(ctx, s.q(`SELECT name, parent, indexer, result, indexed_at FROM clair_layer WHERE name = ?`), name).
		Scan(&l.Name, &parent, &l.Indexer, &l.Result, &l.IndexedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("layer %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return l, fmt.Errorf("layer %q: %w", name, err)
	}
	l.Parent = parent.String
	return l, nil
}

// ClairAncestry returns the layer called name and its ancestors, base
// layer first, or ErrNotFound.
func (s *Store) ClairAncestry(ctx context.Context, name string) ([]ClairLayer, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`WITH RECURSIVE chain (name, parent, indexer, result, indexed_at, depth) AS (
			SELECT name, parent, indexer, result, indexed_at, 0 FROM clair_layer WHERE name = ?
			UNION ALL
			SELECT l.name, l.parent, l.indexer, l.result, l.indexed_at, c.depth + 1
			FROM clair_layer l JOIN chain c ON l.name = c.parent WHERE c.depth < ?
		) SELECT name, parent, indexer, result, indexed_at FROM chain ORDER BY depth DESC`), name, maxAncestry)
	if err != nil {
		return nil, fmt.Errorf("layer %q ancestry: %w", name, err)
	}
	defer rows.Close()
	var out []ClairLayer
	for rows.Next() {
		var l ClairLayer
		var parent sql.NullString
		if err := rows.Scan(&l.Name, &parent, &l.Indexer, &l.Result, &l.IndexedAt); err != nil {
			return nil, err
		}
		l.Parent = parent.String
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("layer %q ancestry: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("layer %q: %w", name, ErrNotFound)
	}
	return out, nil
}

// PutClairLayer stores l unless a layer of that name indexed by the same
// indexer version is already there (then it reports false and changes
// nothing, so concurrent posts of one layer keep one copy). A stored layer
// of an older indexer version gets the new result. The parent must be
// stored (else ErrParentUnknown).
func (s *Store) PutClairLayer(ctx context.Context, l ClairLayer) (bool, error) {
	var created bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var parent any
		if l.Parent != "" {
			var one int
			err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM clair_layer WHERE name = ?`), l.Parent).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("layer %q: parent %q: %w", l.Name, l.Parent, ErrParentUnknown)
			}
			if err != nil {
				return err
			}
			parent = l.Parent
		}
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO clair_layer (name, parent, indexer, result, indexed_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET indexer = excluded.indexer, result = excluded.result, indexed_at = excluded.indexed_at
			WHERE clair_layer.indexer <> excluded.indexer`), l.Name, parent, l.Indexer, l.Result, now())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		created = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store layer %q: %w", l.Name, err)
	}
	return created, nil
}

// DeleteClairLayer removes the layer called name and all its descendants,
// or returns ErrNotFound.
func (s *Store) DeleteClairLayer(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM clair_layer WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("delete layer %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("layer %q: %w", name, ErrNotFound)
	}
	return nil
}

// ClairNamespace is a namespace holding vulnerability data.
type ClairNamespace struct {
	Name          string
	VersionFormat string // "" when only API-created vulnerabilities without fixes name it
}

// APIScope is the scope holding the vulnerabilities of namespace ns created
// through Clair's API.
func APIScope(ns string) string { return "api/" + ns }

// apiSource is the feed_scope source of API-created vulnerabilities.
const apiSource = "api"

// ClairNamespaces lists the namespaces that any advisory or API-created
// vulnerability names.
func (s *Store) ClairNamespaces(ctx context.Context) ([]ClairNamespace, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT namespace, MIN(version_format) FROM affected GROUP BY namespace
		UNION SELECT SUBSTR(scope, 5), '' FROM feed_scope WHERE source = ? AND scope LIKE 'api/%'`), apiSource)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	defer rows.Close()
	byName := map[string]string{}
	for rows.Next() {
		var ns, vf string
		if err := rows.Scan(&ns, &vf); err != nil {
			return nil, err
		}
		if byName[ns] == "" {
			byName[ns] = vf
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]ClairNamespace, 0, len(byName))
	for ns, vf := range byName {
		out = append(out, ClairNamespace{Name: ns, VersionFormat: vf})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ClairVulnerabilityNames returns up to limit names of the vulnerabilities
// of namespace ns (from any source), in order, after the name after.
func (s *Store) ClairVulnerabilityNames(ctx context.Context, ns, after string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT name FROM (
			SELECT v.name AS name FROM affected a JOIN vulnerability v ON v.id = a.vuln WHERE a.namespace = ? AND a.state <> ?
			UNION SELECT name FROM vulnerability WHERE scope = ?
		) u WHERE name > ? ORDER BY name LIMIT ?`), ns, model.StateNotAffected, APIScope(ns), after, limit)
	if err != nil {
		return nil, fmt.Errorf("list vulnerabilities of %s: %w", ns, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// ClairVulnerability is one vulnerability of one namespace as Clair's API
// shows it: the statements of every source merged, those made through the
// API first.
type ClairVulnerability struct {
	Namespace   string
	Name        string
	Description string
	Link        string
	Severity    string // normalized (model.Severity*)
	Metadata    string // JSON object, "" when none
	FixedIn     []ClairFix
	API         bool // created through the API (PUT, DELETE and fixes apply)
}

// ClairFix is one package's state for a vulnerability.
type ClairFix struct {
	Package       string
	VersionFormat string
	State         string // model.StateFixed with FixedVersion, or another affecting state
	FixedVersion  string
}

// ClairVulnerabilities returns the named vulnerabilities of namespace ns,
// in name order; names without data are left out.
func (s *Store) ClairVulnerabilities(ctx context.Context, ns string, names []string) ([]ClairVulnerability, error) {
	if len(names) == 0 {
		return nil, nil
	}
	args := []any{APIScope(ns), ns, model.StateNotAffected}
	for _, n := range names {
		args = append(args, n)
	}
	args = append(args, APIScope(ns))
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT v.scope = ? AS api, v.name, v.title, v.description, v.link,
			COALESCE(cv.severity, ''), COALESCE(cv.metadata, ''),
			COALESCE(a.package, ''), COALESCE(a.version_format, ''), COALESCE(a.state, ''), COALESCE(a.fixed_version, ''), COALESCE(a.severity, '')
		FROM vulnerability v
		LEFT JOIN affected a ON a.vuln = v.id AND a.namespace = ? AND a.state <> ?
		LEFT JOIN clair_vulnerability cv ON cv.vuln = v.id
		WHERE v.name IN (`+placeholders(len(names))+`) AND (a.vuln IS NOT NULL OR v.scope = ?)
		ORDER BY v.name, api DESC, v.scope, a.package`), args...)
	if err != nil {
		return nil, fmt.Errorf("vulnerabilities of %s: %w", ns, err)
	}
	defer rows.Close()
	var out []ClairVulnerability
	seenFix := map[ClairFix]bool{}
	for rows.Next() {
		var api bool
		var name, title, desc, link, sev, meta, fsev string
		var f ClairFix
		if err := rows.Scan(&api, &name, &title, &desc, &link, &sev, &meta, &f.Package, &f.VersionFormat, &f.State, &f.FixedVersion, &fsev); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Name != name {
			if desc == "" {
				desc = title
			}
			out = append(out, ClairVulnerability{Namespace: ns, Name: name, Description: desc, Link: link, Metadata: meta, API: api, Severity: sev})
			clear(seenFix)
		}
		v := &out[len(out)-1]
		if !v.API {
			// Without an API record, the most severe statement of any source.
			if model.SeverityRank(fsev) > model.SeverityRank(v.Severity) || v.Severity == "" {
				v.Severity = fsev
			}
			if v.Description == "" {
				v.Description = desc
			}
			if v.Link == "" {
				v.Link = link
			}
		}
		if f.Package != "" && !seenFix[f] {
			seenFix[f] = true
			v.FixedIn = append(v.FixedIn, f)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Severity == "" {
			out[i].Severity = model.SeverityUnknown
		}
	}
	return out, nil
}

// PutClairVulnerability creates or updates the API record of vulnerability
// v.Name in namespace v.Namespace: its description, link, severity and
// metadata, and, when replaceFixes, its fixes (v.FixedIn). It reports
// whether the record was created. One transaction.
func (s *Store) PutClairVulnerability(ctx context.Context, v ClairVulnerability, replaceFixes bool) (bool, error) {
	var created bool
	err := s.apiTx(ctx, v.Namespace, func(tx *sql.Tx) error {
		id, err := s.apiVulnID(ctx, tx, v.Namespace, v.Name)
		switch {
		case errors.Is(err, ErrNotFound):
			created = true
			err = tx.QueryRowContext(ctx, s.q(`INSERT INTO vulnerability (scope, name, aliases, title, description, link) VALUES (?, ?, '', '', ?, ?) RETURNING id`),
				APIScope(v.Namespace), v.Name, v.Description, v.Link).Scan(&id)
			if err == nil {
				_, err = tx.ExecContext(ctx, s.q(`INSERT INTO clair_vulnerability (vuln, severity, metadata) VALUES (?, ?, ?)`), id, v.Severity, v.Metadata)
			}
		case err == nil:
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`UPDATE vulnerability SET description = ?, link = ? WHERE id = ?`, []any{v.Description, v.Link, id}},
				{`UPDATE clair_vulnerability SET severity = ?, metadata = ? WHERE vuln = ?`, []any{v.Severity, v.Metadata, id}},
				{`UPDATE affected SET severity = ? WHERE vuln = ?`, []any{v.Severity, id}},
			} {
				if _, err = tx.ExecContext(ctx, s.q(q.sql), q.args...); err != nil {
					break
				}
			}
		}
		if err != nil {
			return err
		}
		if !replaceFixes {
			return nil
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM affected WHERE vuln = ?`), id); err != nil {
			return err
		}
		return s.putFixes(ctx, tx, id, v, v.FixedIn)
	})
	if err != nil {
		return false, fmt.Errorf("store vulnerability %s/%s: %w", v.Namespace, v.Name, err)
	}
	return created, nil
}

// PutClairFix sets the fix of one package for an API-created vulnerability
// (ErrNotFound when there is none), replacing that package's previous one.
func (s *Store) PutClairFix(ctx context.Context, ns, vuln string, f ClairFix) error {
	err := s.apiTx(ctx, ns, func(tx *sql.Tx) error {
		id, err := s.apiVulnID(ctx, tx, ns, vuln)
		if err != nil {
			return err
		}
		var sev string
		if err := tx.QueryRowContext(ctx, s.q(`SELECT severity FROM clair_vulnerability WHERE vuln = ?`), id).Scan(&sev); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM affected WHERE vuln = ? AND package = ?`), id, f.Package); err != nil {
			return err
		}
		return s.putFixes(ctx, tx, id, ClairVulnerability{Namespace: ns, Name: vuln, Severity: sev}, []ClairFix{f})
	})
	if err != nil {
		return fmt.Errorf("store fix %s of %s/%s: %w", f.Package, ns, vuln, err)
	}
	return nil
}

// DeleteClairFix removes the fix of package pkg from an API-created
// vulnerability, or returns ErrNotFound.
func (s *Store) DeleteClairFix(ctx context.Context, ns, vuln, pkg string) error {
	return s.apiTx(ctx, ns, func(tx *sql.Tx) error {
		id, err := s.apiVulnID(ctx, tx, ns, vuln)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM affected WHERE vuln = ? AND package = ?`), id, pkg)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("fix %s of %s/%s: %w", pkg, ns, vuln, ErrNotFound)
		}
		return nil
	})
}

// DeleteClairVulnerability removes an API-created vulnerability and its
// fixes, or returns ErrNotFound.
func (s *Store) DeleteClairVulnerability(ctx context.Context, ns, name string) error {
	return s.apiTx(ctx, ns, func(tx *sql.Tx) error {
		id, err := s.apiVulnID(ctx, tx, ns, name)
		if err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM affected WHERE vuln = ?`, `DELETE FROM clair_vulnerability WHERE vuln = ?`, `DELETE FROM vulnerability WHERE id = ?`} {
			if _, err := tx.ExecContext(ctx, s.q(q), id); err != nil {
				return err
			}
		}
		return nil
	})
}

// apiTx runs fn in a transaction on the API scope of namespace ns, creating
// the scope's feed_scope row as needed and recounting its advisories after.
func (s *Store) apiTx(ctx context.Context, ns string, fn func(*sql.Tx) error) error {
	scope := APIScope(ns)
	return s.tx(ctx, func(tx *sql.Tx) error {
		if s.dialect == Postgres {
			if _, err := tx.ExecContext(ctx, s.q(`SELECT pg_advisory_xact_lock(hashtext('vigil-scope:' || ?))`), scope); err != nil {
				return fmt.Errorf("lock scope %s: %w", scope, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO feed_scope (scope, source, origin, digest, advisories, imported_at) VALUES (?, ?, 'vigil API', '', 0, ?)
			ON CONFLICT (scope) DO NOTHING`), scope, apiSource, now()); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`UPDATE feed_scope SET imported_at = ?,
			advisories = (SELECT COUNT(*) FROM affected a JOIN vulnerability v ON v.id = a.vuln WHERE v.scope = ?) WHERE scope = ?`), now(), scope, scope)
		return err
	})
}

// apiVulnID returns the id of an API-created vulnerability, or ErrNotFound.
func (s *Store) apiVulnID(ctx context.Context, tx *sql.Tx, ns, name string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM vulnerability WHERE scope = ? AND name = ?`), APIScope(ns), name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("vulnerability %s in namespace %s, created through the API: %w", name, ns, ErrNotFound)
	}
	return id, err
}

// putFixes writes fixes of vulnerability id as advisories, checked like
// any imported one. dpkg advisories name source packages (as Debian's and
// Ubuntu's data does); others name binary packages.
func (s *Store) putFixes(ctx context.Context, tx *sql.Tx, id int64, v ClairVulnerability, fixes []ClairFix) error {
	w, err := s.newAdvisoryWriter(ctx, tx, APIScope(v.Namespace))
	if err != nil {
		return err
	}
	defer w.close()
	w.vulnIDs[v.Name] = id
	for _, f := range fixes {
		a := model.Advisory{Source: apiSource, ID: v.Name, Namespace: v.Namespace, Package: f.Package,
			SourcePackage: f.VersionFormat == model.KindDpkg, VersionFormat: f.VersionFormat, State: f.State,
			FixedVersion: f.FixedVersion, Severity: v.Severity, Description: v.Description, Link: v.Link}
		if err := w.put(a); err != nil {
			return err
		}
	}
	return nil
}
