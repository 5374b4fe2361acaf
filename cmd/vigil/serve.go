package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-scanner/vigil/internal/api"
	"github.com/vigil-scanner/vigil/internal/config"
	"github.com/vigil-scanner/vigil/internal/notify"
	"github.com/vigil-scanner/vigil/internal/pagetoken"
	"github.com/vigil-scanner/vigil/internal/store"
	"github.com/vigil-scanner/vigil/internal/update"
	"github.com/vigil-scanner/vigil/internal/updater"
)

func newServeCmd(g *globals) *cobra.Command {
	var (
		configFile, cpuProfile       string
		addr, healthAddr             string
		tlsCert, tlsKey, clientCA    string
		insecureTLS, allowLocalPaths bool
		updateInterval               time.Duration
		readHeaderTimeout            time.Duration
		readTimeout, idleTimeout     time.Duration
		maxLayerRatio                int64
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve Clair's v1 API and vigil's image API over HTTP",
		Long: `Serve Clair v2's HTTP API v1 (POST /v1/layers, GET /v1/layers/NAME?features&vulnerabilities, ...),
vigil's image API (/v2/index_report, /v2/vulnerability_report), Prometheus metrics (/v1/metrics)
and a health endpoint (/healthz) on its own listener. With no configuration it listens on
127.0.0.1:6060 and 127.0.0.1:6061 with the embedded SQLite database. --config reads a YAML
file in Clair's layout (docs/config.md); flags given on the command line override it.
SIGINT or SIGTERM stops accepting connections and lets requests in flight finish.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Default()
			if configFile != "" {
				var err error
				if cfg, err = config.Load(configFile); err != nil {
					return err
				}
			}
			f := cmd.Flags()
			set := func(name string, dst *string, v string) {
				if f.Changed(name) {
					*dst = v
				}
			}
			set("addr", &cfg.API.Addr, addr)
			set("health-addr", &cfg.API.HealthAddr, healthAddr)
			set("tls-cert", &cfg.API.CertFile, tlsCert)
			set("tls-key", &cfg.API.KeyFile, tlsKey)
			set("client-ca", &cfg.API.CAFile, clientCA)
			if f.Changed("insecure-tls") {
				cfg.API.InsecureTLS = insecureTLS
			}
			if f.Changed("update-interval") {
				cfg.Updater.Interval = updateInterval
			}
			if f.Changed("allow-local-paths") {
				cfg.API.AllowLocalPaths = allowLocalPaths
			}
			if g.db != "" {
				cfg.Database.Type, cfg.Database.Source = "", g.db
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				log.Warn("config: " + w)
			}
			if cpuProfile != "" {
				pf, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpu-profile: %w", err)
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return fmt.Errorf("--cpu-profile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			dsn, err := cfg.DSN()
			if err != nil {
				return err
			}
			if dsn == "" {
				if dsn, err = g.dsn(); err != nil {
					return err
				}
			}
			st, err := store.Open(cmd.Context(), dsn)
			if err != nil {
				return err
			}
			defer st.Close()
			key, err := cfg.PaginationKey()
			if err != nil {
				return err
			}
			var pages *pagetoken.Codec
			if key != nil {
				pages, err = pagetoken.New(key, pagetoken.DefaultTTL)
			} else {
				log.Warn("no pagination key configured: using a random one, so page tokens are valid on this instance only")
				pages, err = pagetoken.NewRandom(pagetoken.DefaultTTL)
			}
			if err != nil {
				return err
			}
			opt := api.Options{
				Store: st, Pages: pages, Log: log, Timeout: cfg.API.Timeout, IndexConcurrency: cfg.API.IndexConcurrency,
				Fetch: api.FetchOptions{Timeout: cfg.API.FetchTimeout, MaxSize: cfg.API.MaxLayerSize, MaxRatio: maxLayerRatio, InsecureTLS: cfg.API.InsecureTLS, AllowLocalPaths: cfg.API.AllowLocalPaths},
			}
			psk, err := cfg.PSKKey()
			if err != nil {
				return err
			}
			if psk != nil {
				opt.Auth = &api.Authenticator{Key: psk, Issuers: cfg.Auth.PSK.Issuers}
			}
			webhook, err := cfg.Notifier.HTTP.Client()
			if err != nil {
				return err
			}
			notifier, err := notify.New(st, notify.Config{
				Endpoint: cfg.Notifier.HTTP.Endpoint, Attempts: cfg.Notifier.Attempts,
				RenotifyInterval: cfg.Notifier.RenotifyInterval, Client: webhook, Log: log,
			})
			if err != nil {
				return err
			}
			opt.Notifications = &notify.Handler{Store: st, Pages: pages}
			upd, err := updater.New(st, updater.Config{
				Interval: cfg.Updater.Interval, Sources: cfg.Updater.Sources, URLs: cfg.Updater.URLs, Options: update.DefaultOptions(), Log: log,
				AfterUpdate: func(ctx context.Context, _ []string) {
					if _, err := notifier.Pass(ctx); err != nil {
						log.Error("notification pass failed", "err", err)
					}
				},
			})
			if err != nil {
				return err
			}
			srv, err := api.New(opt)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			go func() {
				if err := upd.Run(ctx); err != nil && ctx.Err() == nil {
					log.Error("updater stopped", "err", err)
				}
			}()
			go func() {
				if err := notifier.Run(ctx); err != nil && ctx.Err() == nil {
					log.Error("notifier stopped", "err", err)
				}
			}()
			tlsCfg, err := serverTLS(cfg.API)
			if err != nil {
				return err
			}
			return srv.Serve(ctx, api.Listen{Addr: cfg.API.Addr, HealthAddr: cfg.API.HealthAddr, TLS: tlsCfg,
				ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, IdleTimeout: idleTimeout})
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML configuration file (Clair's layout; see docs/config.md)")
	f.StringVar(&addr, "addr", "127.0.0.1:6060", "API listen address")
	f.StringVar(&healthAddr, "health-addr", "127.0.0.1:6061", "health endpoint listen address")
	f.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile to this file until the server stops")
	f.BoolVar(&insecureTLS, "insecure-tls", false, "do not verify TLS certificates when fetching layers")
	f.BoolVar(&allowLocalPaths, "allow-local-paths", false, "let posted layers name files on this server as their Path")
	f.DurationVar(&updateInterval, "update-interval", 2*time.Hour, "download and import every feed this often (0 disables; `vigil db` still imports)")
	f.DurationVar(&readHeaderTimeout, "read-header-timeout", api.DefaultReadHeaderTimeout, "drop a connection whose request headers take longer than this")
	f.DurationVar(&readTimeout, "read-timeout", api.DefaultReadTimeout, "answer 408 (or drop the connection) when a request's headers and body take longer than this")
	f.DurationVar(&idleTimeout, "idle-timeout", api.DefaultIdleTimeout, "close a kept-alive connection idle this long")
	f.Int64Var(&maxLayerRatio, "max-layer-ratio", api.DefaultMaxRatio, "refuse (422) a layer that decompresses to more than this many times its compressed size, past 64 MiB")
	f.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	f.StringVar(&tlsKey, "tls-key", "", "private key of --tls-cert (PEM)")
	f.StringVar(&clientCA, "client-ca", "", "require client certificates signed by this CA (PEM): mutual TLS")
	return cmd
}

// serverTLS builds the main listener's TLS configuration, nil for HTTP.
func serverTLS(c config.API) (*tls.Config, error) {
	if c.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificate in it", c.CAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
