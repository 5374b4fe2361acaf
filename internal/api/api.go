// Package api is vigil's HTTP server: Clair v2's API v1 (wire-compatible:
// routes, PascalCase envelopes, status codes and error bodies; see
// docs/api.md), vigil's image API (/v2, docs/openapi.yaml), Prometheus
// metrics, and a health endpoint on its own listener.
//
// Rules:
//   - Handlers are thin: layers are indexed by index.Indexer.Read, composed
//     by index.Compose, matched by match.Match and reported by report.New;
//     everything is kept in the store.
//   - Every request has a deadline (503 with Clair's timeout body beyond),
//     a 1 MiB body cap (413), read whole before the handler runs (408 when
//     slower than the read timeout), a request id (X-Request-Id, echoed or
//     made) and, when configured, JWT authentication (401 without it).
//     Serve sets header, read, write and idle timeouts on connections.
//   - Requests that fetch and index layers are bounded in number
//     (Options.IndexConcurrency); beyond it they answer 429 at once.
//   - Concurrent requests for the same layer or manifest share one fetch
//     and index (singleflight), which no single client's hang-up cancels.
//   - Fetched layers are bounded in size, time and expansion ratio,
//     follow at most 5 redirects, and image API layers must match the
//     digest given.
package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/singleflight"

	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/pagetoken"
	"github.com/vigil-scanner/vigil/internal/store"
)

// NotificationRoutes serves GET and DELETE /v1/notifications/{name}; the
// notifier implements it.
type NotificationRoutes interface {
	GetNotification(w http.ResponseWriter, r *http.Request, name string)
	DeleteNotification(w http.ResponseWriter, r *http.Request, name string)
}

// Options configure a Server. Store and Pages are required.
type Options struct {
	Store *store.Store
	Pages *pagetoken.Codec
	Log   *slog.Logger
	// Timeout bounds each request (default 900s, as Clair).
	Timeout time.Duration
	// IndexConcurrency bounds requests indexing layers at once (default 4).
	IndexConcurrency int
	// Fetch bounds layer downloads.
	Fetch FetchOptions
	// Auth, when non-nil, is required on every route of Handler.
	Auth *Authenticator
	// Notifications serves /v1/notifications; nil answers 404 there.
	Notifications NotificationRoutes
	// Metrics is the registry /v1/metrics exposes; nil makes a new one
	// with the Go and process collectors.
	Metrics *prometheus.Registry
}

// maxBodySize caps request bodies, as Clair.
const maxBodySize = 1 << 20

// Server serves the API.
type Server struct {
	opt     Options
	st      *store.Store
	log     *slog.Logger
	indexer *index.Indexer
	fetcher *fetcher
	slots   chan struct{}
	flight  singleflight.Group
	metrics *metrics
}

// New returns a Server.
func New(opt Options) (*Server, error) {
	if opt.Store == nil || opt.Pages == nil {
		return nil, errors.New("api: Store and Pages are required")
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 900 * time.Second
	}
	if opt.IndexConcurrency <= 0 {
		opt.IndexConcurrency = 4
	}
	if opt.Metrics == nil {
		opt.Metrics = prometheus.NewRegistry()
		opt.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m, err := newMetrics(opt.Metrics)
	if err != nil {
		return nil, err
	}
	return &Server{
		opt:     opt,
		st:      opt.Store,
		log:     opt.Log,
		indexer: index.New(opt.Store, opt.Log),
		fetcher: newFetcher(opt.Fetch),
		slots:   make(chan struct{}, opt.IndexConcurrency),
		metrics: m,
	}, nil
}

// Handler returns the main API handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	methods := map[string][]string{} // path pattern → methods of its routes
	route := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		method, path, _ := strings.Cut(pattern, " ")
		methods[path] = append(methods[path], method)
		mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, ok := r.Context().Value(routeKey{}).(*atomic.Pointer[string]); ok {
				p.Store(&pattern)
			}
			if err := h(w, r); err != nil {
				s.writeErr(w, r, err)
			}
		}))
	}
	route("POST /v1/layers", s.postLayer)
	route("GET /v1/layers/{name}", s.getLayer)
	route("DELETE /v1/layers/{name}", s.deleteLayer)
	route("GET /v1/namespaces", s.getNamespaces)
	route("GET /v1/namespaces/{ns}/vulnerabilities", s.listVulnerabilities)
	route("POST /v1/namespaces/{ns}/vulnerabilities", s.postVulnerability)
	route("GET /v1/namespaces/{ns}/vulnerabilities/{vuln}", s.getVulnerability)
	route("PUT /v1/namespaces/{ns}/vulnerabilities/{vuln}", s.putVulnerability)
	route("DELETE /v1/namespaces/{ns}/vulnerabilities/{vuln}", s.deleteVulnerability)
	route("GET /v1/namespaces/{ns}/vulnerabilities/{vuln}/fixes", s.getFixes)
	route("PUT /v1/namespaces/{ns}/vulnerabilities/{vuln}/fixes/{feature}", s.putFix)
	route("DELETE /v1/namespaces/{ns}/vulnerabilities/{vuln}/fixes/{feature}", s.deleteFix)
	route("GET /v1/notifications/{name}", s.notification)
	route("DELETE /v1/notifications/{name}", s.notification)
	route("GET /v1/metrics", func(w http.ResponseWriter, r *http.Request) error {
		promhttp.HandlerFor(s.opt.Metrics, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return nil
	})
	route("POST /v2/index_report", s.postIndexReport)
	route("GET /v2/index_report/{manifest}", s.getIndexReport)
	route("GET /v2/vulnerability_report/{manifest}", s.getVulnerabilityReport)
	// Requests no route takes answer Clair's error body too, not the mux's
	// plain text: 405 on a route's path, else 404.
	for path, ms := range methods {
		if slices.Contains(ms, http.MethodGet) {
			ms = append(ms, http.MethodHead)
		}
		allow := strings.Join(ms, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, fmt.Sprintf("%s %s: no such route", r.Method, r.URL.Path))
	})

	var h http.Handler = http.TimeoutHandler(mux, s.opt.Timeout, timeoutBody)
	h = bodyCap(h)
	if s.opt.Auth != nil {
		h = s.opt.Auth.middleware(h)
	}
	return s.observe(h)
}

// HealthHandler answers GET /healthz (and Clair's /health): 200 when the
// database answers, else 503. It needs no authentication.
func (s *Server) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	h := func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.st.Ping(ctx); err != nil {
			s.log.Warn("health check: database unreachable", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
	mux.HandleFunc("GET /healthz", h)
	mux.HandleFunc("GET /health", h)
	return mux
}

func (s *Server) notification(w http.ResponseWriter, r *http.Request) error {
	n := s.opt.Notifications
	if n == nil {
		return errorf(http.StatusNotFound, "notifications are not enabled on this server")
	}
	if r.Method == http.MethodDelete {
		n.DeleteNotification(w, r, r.PathValue("name"))
	} else {
		n.GetNotification(w, r, r.PathValue("name"))
	}
	return nil
}

// Listen holds the addresses and TLS settings of Serve.
type Listen struct {
	Addr, HealthAddr string
	// TLS, when non-nil, serves the main listener over TLS (the health
	// listener stays plain HTTP, for probes).
	TLS *tls.Config
	// Ready, when non-nil, receives the bound addresses once listening.
	Ready func(addr, healthAddr net.Addr)
	// ReadHeaderTimeout bounds reading a request's headers (default 10s),
	// ReadTimeout its headers and body (default 60s; bodies are at most
	// 1 MiB), IdleTimeout a kept-alive connection between requests
	// (default 120s). Responses must be written within the request timeout
	// plus a minute.
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
}

// Default timeouts of Listen.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

// httpServer returns the main listener's server, with l's timeouts.
func (s *Server) httpServer(l Listen) *http.Server {
	def := func(d, v time.Duration) time.Duration {
		if d <= 0 {
			return v
		}
		return d
	}
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: def(l.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       def(l.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      s.opt.Timeout + time.Minute,
		IdleTimeout:       def(l.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// maxHeaderBytes caps request headers (JWTs fit easily).
const maxHeaderBytes = 64 << 10

// Serve runs the main and health listeners until ctx ends, then shuts
// down gracefully: listeners close at once, requests in flight finish
// (within the request timeout).
func (s *Server) Serve(ctx context.Context, l Listen) error {
	ln, err := net.Listen("tcp", l.Addr)
	if err != nil {
		return err
	}
	hln, err := net.Listen("tcp", l.HealthAddr)
	if err != nil {
		ln.Close()
		return err
	}
	if l.TLS != nil {
		ln = tls.NewListener(ln, l.TLS)
	}
	main := s.httpServer(l)
	health := &http.Server{Handler: s.HealthHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	if l.Ready != nil {
		l.Ready(ln.Addr(), hln.Addr())
	}
	s.log.Info("serving", "addr", ln.Addr().String(), "health_addr", hln.Addr().String(), "tls", l.TLS != nil)
	errc := make(chan error, 2)
	go func() { errc <- main.Serve(ln) }()
	go func() { errc <- health.Serve(hln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opt.Timeout+5*time.Second)
	defer cancel()
	err = errors.Join(err, main.Shutdown(sctx), health.Shutdown(sctx))
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// indexedByVersion is index.Version's number, Clair's IndexedByVersion.
var indexedByVersion = func() int {
	n, _ := strconv.Atoi(index.Version[strings.LastIndexByte(index.Version, '/')+1:])
	return n
}()
