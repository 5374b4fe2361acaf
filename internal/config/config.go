// Package config reads vigil's server configuration: a YAML file in Clair's
// layout (v2's, with or without the top-level "clair:" key, and the later
// v3 spellings), with vigil's own additions, over built-in defaults that
// let `vigil serve` start with no file at all. Unknown keys are errors, so
// a misspelt key is not silently ignored. docs/config.md lists every key.
package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/vigil-scanner/vigil/internal/pagetoken"
)

// Config is the resolved configuration.
type Config struct {
	Database Database
	API      API
	Updater  Updater
	Notifier Notifier
	Auth     Auth
	// Warnings name keys of the file that were accepted but have no effect.
	Warnings []string
}

// Database says where vigil keeps its state.
type Database struct {
	// Type is "sqlite" or "pgsql"/"postgres"/"postgresql"; "" infers it
	// from Source.
	Type string
	// Source is a SQLite path, a postgres:// URL or a libpq key=value
	// connection string; "" means the default SQLite file.
	Source string
	// CacheSize is Clair's id cache size; accepted for compatibility, it has
	// no effect (vigil caches whole layer results in the database).
	CacheSize int
	// PaginationKey is the base64 32-byte key of pagination tokens; ""
	// means a random key per process (tokens do not cross instances).
	PaginationKey string
}

// API configures the HTTP servers.
type API struct {
	Addr       string        // main listener, host:port
	HealthAddr string        // health listener, host:port
	Timeout    time.Duration // per request; 503 with Clair's body beyond
	// TLS: CertFile and KeyFile serve HTTPS; CAFile also requires client
	// certificates signed by it (mutual TLS).
	CertFile, KeyFile, CAFile string
	// AllowLocalPaths lets a posted layer Path name a file on the server.
	AllowLocalPaths bool
	// InsecureTLS skips certificate checks when fetching layers.
	InsecureTLS bool
	// IndexConcurrency bounds requests fetching and indexing layers at
	// once; more answer 429.
	IndexConcurrency int
	// MaxLayerSize bounds a fetched layer blob, in bytes.
	MaxLayerSize int64
	// FetchTimeout bounds one layer download.
	FetchTimeout time.Duration
}

// Updater configures the periodic feed update.
type Updater struct {
	Interval time.Duration // 0 disables periodic updates
	// Sources selects feeds by name or prefix (Clair's enabledupdaters, with
	// "rhel" read as "redhat"); empty means every feed.
	Sources []string
	// URLs replaces a feed's upstream documents, by feed name
	// (updater.urls; Clair's endpoints give one URL per feed).
	URLs map[string][]string
}

// Notifier configures notification delivery.
type Notifier struct {
	Attempts         int
	RenotifyInterval time.Duration
	HTTP             NotifierHTTP
}

// NotifierHTTP is the webhook notifications are posted to.
type NotifierHTTP struct {
	Endpoint                              string
	ServerName, CAFile, KeyFile, CertFile string
	Proxy                                 string
}

// Auth configures request authentication. With PSK.Key set, every request
// but health checks needs "Authorization: Bearer <JWT>" signed with it.
type Auth struct {
	PSK PSK
}

// PSK is a pre-shared HMAC key for JWTs, as Clair v4's auth.psk.
type PSK struct {
	Key     string   // base64
	Issuers []string // allowed "iss" values; empty allows any
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		API: API{
			Addr:             "127.0.0.1:6060",
			HealthAddr:       "127.0.0.1:6061",
			Timeout:          900 * time.Second,
			IndexConcurrency: 4,
			MaxLayerSize:     8 << 30,
			FetchTimeout:     10 * time.Minute,
		},
		Updater:  Updater{Interval: 2 * time.Hour},
		Notifier: Notifier{Attempts: 5, RenotifyInterval: 2 * time.Hour},
	}
}

// MaxSize bounds a configuration file, in bytes (a real one is a few KiB).
const MaxSize = 1 << 20

// Load reads the YAML file at path over the defaults, and validates it.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse reads a YAML document (at most MaxSize bytes) over the defaults,
// and validates it.
func Parse(data []byte) (Config, error) {
	c := Default()
	if len(data) > MaxSize {
		return c, fmt.Errorf("larger than %d bytes: not a configuration file", MaxSize)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return c, err
	}
	if len(root.Content) == 0 {
		return c, c.Validate()
	}
	doc := root.Content[0]
	if doc.Kind == yaml.MappingNode && len(doc.Content) == 2 && doc.Content[0].Value == "clair" {
		doc = doc.Content[1]
	}
	// Re-encode the chosen node to decode it strictly (yaml.Node.Decode
	// has no KnownFields).
	body, err := yaml.Marshal(doc)
	if err != nil {
		return c, err
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	// EOF: an empty document, or nothing under "clair:".
	if err := dec.Decode(&f); err != nil && err != io.EOF {
		return c, err
	}
	if err := f.apply(&c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// file is the YAML layout.
type file struct {
	Database struct {
		Type          string `yaml:"type"`
		Source        string `yaml:"source"`
		CacheSize     *int   `yaml:"cachesize"`
		PaginationKey string `yaml:"paginationkey"`
		Options       struct {
			Source                  string `yaml:"source"`
			CacheSize               *int   `yaml:"cachesize"`
			PaginationKey           string `yaml:"paginationkey"`
			ManageDatabaseLifecycle bool   `yaml:"managedatabaselifecycle"`
			FixturePath             string `yaml:"fixturepath"`
		} `yaml:"options"`
	} `yaml:"database"`
	API struct {
		Addr             string    `yaml:"addr"`
		HealthAddr       string    `yaml:"healthaddr"`
		Port             *int      `yaml:"port"`
		HealthPort       *int      `yaml:"healthport"`
		Timeout          *duration `yaml:"timeout"`
		PaginationKey    string    `yaml:"paginationkey"`
		ServerName       string    `yaml:"servername"`
		CAFile           string    `yaml:"cafile"`
		KeyFile          string    `yaml:"keyfile"`
		CertFile         string    `yaml:"certfile"`
		AllowLocalPaths  bool      `yaml:"allowlocalpaths"`
		InsecureTLS      bool      `yaml:"insecuretls"`
		IndexConcurrency *int      `yaml:"indexconcurrency"`
		MaxLayerSize     *int64    `yaml:"maxlayersize"`
		FetchTimeout     *duration `yaml:"fetchtimeout"`
	} `yaml:"api"`
	Updater struct {
		Interval        *duration           `yaml:"interval"`
		EnabledUpdaters []string            `yaml:"enabledupdaters"`
		Endpoints       map[string]string   `yaml:"endpoints"`
		URLs            map[string][]string `yaml:"urls"`
	} `yaml:"updater"`
	Notifier struct {
		Attempts         *int      `yaml:"attempts"`
		RenotifyInterval *duration `yaml:"renotifyinterval"`
		HTTP             struct {
			Endpoint   string `yaml:"endpoint"`
			ServerName string `yaml:"servername"`
			CAFile     string `yaml:"cafile"`
			KeyFile    string `yaml:"keyfile"`
			CertFile   string `yaml:"certfile"`
			Proxy      string `yaml:"proxy"`
		} `yaml:"http"`
	} `yaml:"notifier"`
	Auth struct {
		PSK struct {
			Key string   `yaml:"key"`
			Iss []string `yaml:"iss"`
		} `yaml:"psk"`
	} `yaml:"auth"`
	// Worker holds Clair v3's detector and lister lists; vigil always runs
	// all of its own, so the section is accepted and has no effect.
	Worker struct {
		NamespaceDetectors []string `yaml:"namespace_detectors"`
		FeatureListers     []string `yaml:"feature_listers"`
	} `yaml:"worker"`
}

func (f *file) apply(c *Config) error {
	d := &f.Database
	c.Database.Type = d.Type
	c.Database.Source = first(d.Source, d.Options.Source)
	if cs := firstPtr(d.CacheSize, d.Options.CacheSize); cs != nil {
		c.Database.CacheSize = *cs
		c.warn("database.cachesize has no effect: vigil caches whole layer results in the database")
	}
	if d.Options.ManageDatabaseLifecycle || d.Options.FixturePath != "" {
		c.warn("database.options.managedatabaselifecycle and fixturepath have no effect: vigil migrates its schema itself")
	}
	a := &f.API
	c.Database.PaginationKey = first(d.PaginationKey, d.Options.PaginationKey, a.PaginationKey)
	if a.Addr != "" {
		c.API.Addr = a.Addr
	}
	if a.HealthAddr != "" {
		c.API.HealthAddr = a.HealthAddr
	}
	var err error
	if a.Port != nil {
		if c.API.Addr, err = withPort(c.API.Addr, *a.Port); err != nil {
			return fmt.Errorf("api.port: %w", err)
		}
	}
	if a.HealthPort != nil {
		if c.API.HealthAddr, err = withPort(c.API.HealthAddr, *a.HealthPort); err != nil {
			return fmt.Errorf("api.healthport: %w", err)
		}
	}
	setDuration(&c.API.Timeout, a.Timeout)
	setDuration(&c.API.FetchTimeout, a.FetchTimeout)
	if a.ServerName != "" {
		c.warn("api.servername has no effect: the server name comes from the certificate")
	}
	c.API.CAFile, c.API.KeyFile, c.API.CertFile = a.CAFile, a.KeyFile, a.CertFile
	c.API.AllowLocalPaths, c.API.InsecureTLS = a.AllowLocalPaths, a.InsecureTLS
	if a.IndexConcurrency != nil {
		c.API.IndexConcurrency = *a.IndexConcurrency
	}
	if a.MaxLayerSize != nil {
		c.API.MaxLayerSize = *a.MaxLayerSize
	}
	setDuration(&c.Updater.Interval, f.Updater.Interval)
	for _, name := range f.Updater.EnabledUpdaters {
		if name == "rhel" {
			name = "redhat"
		}
		c.Updater.Sources = append(c.Updater.Sources, name)
	}
	if len(f.Updater.Endpoints)+len(f.Updater.URLs) > 0 {
		c.Updater.URLs = map[string][]string{}
		for feed, u := range f.Updater.Endpoints {
			c.Updater.URLs[feed] = append(c.Updater.URLs[feed], u)
		}
		for feed, us := range f.Updater.URLs {
			c.Updater.URLs[feed] = append(c.Updater.URLs[feed], us...)
		}
	}
	if len(f.Worker.NamespaceDetectors) > 0 || len(f.Worker.FeatureListers) > 0 {
		c.warn("worker has no effect: vigil always runs all its detectors and catalogers")
	}
	n := &f.Notifier
	if n.Attempts != nil {
		c.Notifier.Attempts = *n.Attempts
	}
	setDuration(&c.Notifier.RenotifyInterval, n.RenotifyInterval)
	c.Notifier.HTTP = NotifierHTTP(n.HTTP)
	c.Auth.PSK = PSK{Key: f.Auth.PSK.Key, Issuers: f.Auth.PSK.Iss}
	return nil
}

// Validate checks the values for consistency.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	switch strings.ToLower(c.Database.Type) {
	case "", "sqlite", "sqlite3", "pgsql", "postgres", "postgresql":
	default:
		check(false, "database.type %q: want sqlite or pgsql", c.Database.Type)
	}
	if c.Database.PaginationKey != "" {
		_, err := pagetoken.ParseKey(c.Database.PaginationKey)
		check(err == nil, "paginationkey: %v", err)
	}
	for name, addr := range map[string]string{"api.addr": c.API.Addr, "api.healthaddr": c.API.HealthAddr} {
		_, _, err := net.SplitHostPort(addr)
		check(err == nil, "%s %q: %v", name, addr, err)
	}
	check(c.API.Addr != c.API.HealthAddr, "api.addr and api.healthaddr are both %s: health needs its own listener", c.API.Addr)
	check(c.API.Timeout > 0, "api.timeout must be positive")
	check(c.API.FetchTimeout > 0, "api.fetchtimeout must be positive")
	check((c.API.CertFile == "") == (c.API.KeyFile == ""), "api.certfile and api.keyfile go together")
	check(c.API.CAFile == "" || c.API.CertFile != "", "api.cafile (client certificates) needs api.certfile and api.keyfile")
	check(c.API.IndexConcurrency > 0, "api.indexconcurrency must be at least 1")
	check(c.API.MaxLayerSize > 0, "api.maxlayersize must be positive")
	check(c.Updater.Interval >= 0, "updater.interval must not be negative")
	check(c.Notifier.Attempts >= 0, "notifier.attempts must not be negative")
	check(c.Notifier.RenotifyInterval >= 0, "notifier.renotifyinterval must not be negative")
	if e := c.Notifier.HTTP.Endpoint; e != "" {
		u, err := url.Parse(e)
		check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", "notifier.http.endpoint %q: want an http(s) URL", e)
	}
	if c.Auth.PSK.Key != "" {
		_, err := c.PSKKey()
		check(err == nil, "auth.psk.key: %v", err)
	}
	return errors.Join(errs...)
}

// PSKKey decodes auth.psk.key (nil when unset).
func (c *Config) PSKKey() ([]byte, error) {
	if c.Auth.PSK.Key == "" {
		return nil, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(c.Auth.PSK.Key); err == nil {
			if len(k) < 16 {
				return nil, fmt.Errorf("key is %d bytes; use at least 16", len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("not base64")
}

// PaginationKey decodes database.paginationkey (nil when unset).
func (c *Config) PaginationKey() ([]byte, error) {
	if c.Database.PaginationKey == "" {
		return nil, nil
	}
	return pagetoken.ParseKey(c.Database.PaginationKey)
}

// DSN is the store.Open argument for the database: the SQLite path or a
// postgres:// URL (a libpq key=value string is converted); "" means the
// default database.
func (c *Config) DSN() (string, error) {
	src := c.Database.Source
	pg := strings.HasPrefix(src, "postgres://") || strings.HasPrefix(src, "postgresql://")
	switch strings.ToLower(c.Database.Type) {
	case "pgsql", "postgres", "postgresql":
		if src == "" {
			return "", errors.New("database.type is pgsql but database source is empty")
		}
		if !pg {
			return conninfoURL(src)
		}
	case "sqlite", "sqlite3":
		if pg {
			return "", fmt.Errorf("database.type is sqlite but the source is a PostgreSQL URL")
		}
	}
	return src, nil
}

// conninfoURL converts a libpq "key=value ..." connection string (values
// optionally single-quoted with backslash escapes) to a postgres:// URL.
func conninfoURL(s string) (string, error) {
	kv := map[string]string{}
	r := []rune(s)
	for i := 0; i < len(r); {
		for i < len(r) && unicode.IsSpace(r[i]) {
			i++
		}
		if i == len(r) {
			break
		}
		start := i
		for i < len(r) && r[i] != '=' && !unicode.IsSpace(r[i]) {
			i++
		}
		key := string(r[start:i])
		for i < len(r) && unicode.IsSpace(r[i]) {
			i++
		}
		if i == len(r) || r[i] != '=' {
			return "", fmt.Errorf("database source: %q has no value (want key=value pairs or a postgres:// URL)", key)
		}
		i++
		for i < len(r) && unicode.IsSpace(r[i]) {
			i++
		}
		var val []rune
		if i < len(r) && r[i] == '\'' {
			i++
			for ; i < len(r) && r[i] != '\''; i++ {
				if r[i] == '\\' && i+1 < len(r) {
					i++
				}
				val = append(val, r[i])
			}
			if i == len(r) {
				return "", fmt.Errorf("database source: unterminated quote in the value of %q", key)
			}
			i++
		} else {
			for ; i < len(r) && !unicode.IsSpace(r[i]); i++ {
				if r[i] == '\\' && i+1 < len(r) {
					i++
				}
				val = append(val, r[i])
			}
		}
		kv[key] = string(val)
	}
	u := url.URL{Scheme: "postgres", Host: "localhost"}
	if h := kv["host"]; h != "" {
		u.Host = h
	}
	if p := kv["port"]; p != "" {
		u.Host = net.JoinHostPort(strings.Trim(u.Host, "[]"), p)
	}
	if kv["user"] != "" {
		if pw, ok := kv["password"]; ok {
			u.User = url.UserPassword(kv["user"], pw)
		} else {
			u.User = url.User(kv["user"])
		}
	}
	u.Path = "/" + kv["dbname"]
	q := url.Values{}
	for k, v := range kv {
		switch k {
		case "host", "port", "user", "password", "dbname":
		default:
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	if _, err := url.Parse(u.String()); err != nil {
		// A socket directory (host=/run/postgresql) or a list of hosts is
		// no URL host: give host and port as parameters, as pgx reads them.
		u.Host = ""
		for _, k := range []string{"host", "port"} {
			if v := kv[k]; v != "" {
				q.Set(k, v)
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

func (c *Config) warn(msg string) { c.Warnings = append(c.Warnings, msg) }

func withPort(addr string, port int) (string, error) {
	if port < 0 || port > 65535 {
		return "", fmt.Errorf("%d is not a port", port)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstPtr[T any](vals ...*T) *T {
	for _, v := range vals {
		if v != nil {
			return v
		}
	}
	return nil
}

func setDuration(dst *time.Duration, d *duration) {
	if d != nil {
		*dst = time.Duration(*d)
	}
}

// duration reads "900s", "2h30m" or a bare number of seconds.
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 900s or 2h", n.Line)
	}
	if secs, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		*d = duration(time.Duration(secs) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 900s or 2h", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}
