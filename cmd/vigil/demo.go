package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vigil-scanner/vigil/internal/demo"
	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/report"
	"github.com/vigil-scanner/vigil/internal/scan"
	"github.com/vigil-scanner/vigil/internal/store"
	"github.com/vigil-scanner/vigil/internal/update"
)

func newDemoCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a real scan offline: write a small Debian image and feed, import, scan",
		Long: `Write a one-layer Debian 12 image (docker-save tarball) and a Debian security
tracker document restating a few real entries for its packages into DIR
(default: a new temporary directory), import the document into a database in
DIR (or --db), and scan the image. Needs no network.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				d, err := os.MkdirTemp("", "vigil-demo-")
				if err != nil {
					return err
				}
				dir = d
			}
			files, err := demo.Write(dir)
			if err != nil {
				return err
			}
			dsn := g.db
			if dsn == "" {
				dsn = filepath.Join(dir, "vigil.db")
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			st, err := store.Open(cmd.Context(), dsn)
			if err != nil {
				return err
			}
			defer st.Close()
			out := cmd.OutOrStdout()
			sc, err := update.ImportFile(cmd.Context(), st, "debian", files.Feed, update.DefaultOptions())
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "$ vigil db import debian %s\nimported %s: %d advisories\n\n", files.Feed, sc.Scope, sc.Advisories)
			fmt.Fprintf(out, "$ vigil scan %s\n", files.Image)
			s, _, err := scan.New(st, log).Scan(cmd.Context(), files.Image, image.Options{})
			if err != nil {
				return err
			}
			return report.Table(out, s)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the demo image, feed and database")
	return cmd
}
