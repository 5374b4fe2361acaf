package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"
)

// Client returns the HTTP client that posts notifications to the webhook:
// Clair's notifier.http options (servername, CA, client certificate,
// proxy) applied, with a 30-second timeout.
func (n NotifierHTTP) Client() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tlsCfg := &tls.Config{ServerName: n.ServerName, MinVersion: tls.VersionTLS12}
	if n.CAFile != "" {
		pem, err := os.ReadFile(n.CAFile)
		if err != nil {
			return nil, fmt.Errorf("notifier.http.cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("notifier.http.cafile %s: no PEM certificate in it", n.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	if n.CertFile != "" || n.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(n.CertFile, n.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("notifier.http.certfile/keyfile: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	tr.TLSClientConfig = tlsCfg
	if n.Proxy != "" {
		u, err := url.Parse(n.Proxy)
		if err != nil {
			return nil, fmt.Errorf("notifier.http.proxy: %w", err)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}
