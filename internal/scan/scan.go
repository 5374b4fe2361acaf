// Package scan runs the whole pipeline for one image: open it, index it
// (through the store's layer cache), match its packages against the stored
// advisories, and assemble the report.
package scan

import (
	"context"
	"log/slog"

	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/match"
	"github.com/vigil-scanner/vigil/internal/report"
	"github.com/vigil-scanner/vigil/internal/store"
)

// Options tune a scan.
type Options struct {
	Image image.Options
	Log   *slog.Logger
}

// Scanner scans images against one store.
type Scanner struct {
	Store   *store.Store
	Indexer *index.Indexer
	Log     *slog.Logger
}

// New returns a Scanner using st for caching and advisories.
func New(st *store.Store, log *slog.Logger) *Scanner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scanner{Store: st, Indexer: index.New(st, log), Log: log}
}

// Scan scans the image named by ref.
func (s *Scanner) Scan(ctx context.Context, ref string, opt image.Options) (*report.Scan, index.Stats, error) {
	img, err := image.Open(ctx, ref, opt)
	if err != nil {
		return nil, index.Stats{}, err
	}
	defer img.Close()
	ir, st, err := s.Indexer.Index(ctx, img)
	if err != nil {
		return nil, st, err
	}
	res, err := match.Match(ctx, s.Store, ir.Distribution, ir.Packages)
	if err != nil {
		return nil, st, err
	}
	return report.New(ir, res.Findings, res.Warnings), st, nil
}
