package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-scanner/vigil/internal/store"
	"github.com/vigil-scanner/vigil/internal/update"
)

func newDBCmd(g *globals) *cobra.Command {
	db := &cobra.Command{Use: "db", Short: "Manage the vulnerability database"}
	db.AddCommand(newDBImportCmd(g), newDBUpdateCmd(g), newDBStatusCmd(g))
	return db
}

func openStore(cmd *cobra.Command, g *globals) (*store.Store, error) {
	dsn, err := g.dsn()
	if err != nil {
		return nil, err
	}
	return store.Open(cmd.Context(), dsn)
}

func newDBImportCmd(g *globals) *cobra.Command {
	var maxShrink float64
	cmd := &cobra.Command{
		Use:   "import [SOURCE] FILE...",
		Short: "Import vulnerability documents from files",
		Long: `Import upstream vulnerability documents (plain, gzip, bzip2 or zstd) from files.
SOURCE, when given, restricts the format detection to feeds of that source:
debian, ubuntu, alpine, redhat, oracle (or a full feed name). Each document
replaces the data of the scope it covers atomically: a bad file changes nothing.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			source := ""
			if len(args) > 1 && isSourceName(args[0]) {
				source, args = args[0], args[1:]
			}
			st, err := openStore(cmd, g)
			if err != nil {
				return err
			}
			defer st.Close()
			opt := update.DefaultOptions()
			opt.MaxShrink = maxShrink
			var errs []error
			for _, file := range args {
				sc, err := update.ImportFile(cmd.Context(), st, source, file, opt)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "imported %s: %s, %d advisories\n", file, sc.Scope, sc.Advisories)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().Float64Var(&maxShrink, "max-shrink", 0.5, "refuse an import that shrinks a scope by more than this fraction (0 disables)")
	return cmd
}

func isSourceName(s string) bool {
	for _, f := range update.Feeds() {
		if strings.HasPrefix(f.Name(), s) {
			return true
		}
	}
	return false
}

func newDBUpdateCmd(g *globals) *cobra.Command {
	var (
		sources   []string
		urls      []string
		maxShrink float64
	)
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Download and import the upstream vulnerability documents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			override := map[string][]string{}
			for _, u := range urls {
				name, url, ok := strings.Cut(u, "=")
				if !ok || url == "" {
					return fmt.Errorf("--url %q: want FEED=URL", u)
				}
				override[name] = append(override[name], url)
			}
			st, err := openStore(cmd, g)
			if err != nil {
				return err
			}
			defer st.Close()
			opt := update.DefaultOptions()
			opt.MaxShrink = maxShrink
			var errs []error
			for _, r := range update.Update(cmd.Context(), st, sources, override, opt) {
				if r.Err != nil {
					errs = append(errs, r.Err)
					continue
				}
				if c := r.Set; c != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "updated %s: %d documents imported, %d unchanged, %d withdrawn, %d refused\n",
						r.URL, c.Imported, c.Unchanged, c.Withdrawn, c.Failed)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "updated %s: %d advisories\n", r.Scope.Scope, r.Scope.Advisories)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringSliceVar(&sources, "source", nil, "update only these sources (debian, ubuntu, alpine, redhat, oracle or feed names)")
	cmd.Flags().StringArrayVar(&urls, "url", nil, "FEED=URL: fetch this URL for that feed instead of its defaults (repeatable)")
	cmd.Flags().Float64Var(&maxShrink, "max-shrink", 0.5, "refuse an update that shrinks a scope by more than this fraction (0 disables)")
	return cmd
}

func newDBStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "List the imported vulnerability documents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(cmd, g)
			if err != nil {
				return err
			}
			defer st.Close()
			scopes, err := st.Scopes(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(scopes) == 0 {
				fmt.Fprintln(out, "no vulnerability data: run `vigil db update` or `vigil db import FILE`")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCOPE\tSOURCE\tADVISORIES\tIMPORTED\tORIGIN")
			for _, s := range scopes {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Scope, s.Source, s.Advisories, time.Unix(s.ImportedAt, 0).UTC().Format(time.RFC3339), s.Origin)
			}
			return tw.Flush()
		},
	}
}
