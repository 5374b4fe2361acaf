package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/report"
	"github.com/vigil-scanner/vigil/internal/scan"
	"github.com/vigil-scanner/vigil/internal/store"
)

func storeDefaultPath() (string, error) { return store.DefaultPath() }

func newScanCmd(g *globals) *cobra.Command {
	var (
		format, severity, platform string
		ignoreUnfixed, insecure    bool
		exitCode                   int
	)
	cmd := &cobra.Command{
		Use:   "scan IMAGE",
		Short: "Scan an image for vulnerable packages",
		Long: `Scan an image for vulnerable packages.

IMAGE is a docker-save tarball (plain or gzipped), an OCI image layout
directory (optionally PATH:TAG), an OCI archive, a root filesystem directory
or tarball, or a registry reference. Prefixes force the kind:
docker-archive:, oci-dir:, oci-archive:, dir:, registry:.

Exit status: 0 on success (or findings with --exit-code 0), the --exit-code
value when findings remain after filtering, 2 on error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "table", "json":
			default:
				return fmt.Errorf("--format %q: want table or json", format)
			}
			if severity != "" && !validSeverity(severity) {
				return fmt.Errorf("--severity %q: want one of %s", severity, strings.Join(model.Severities, ", "))
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			st, err := openStore(cmd, g)
			if err != nil {
				return err
			}
			defer st.Close()
			s, stats, err := scan.New(st, log).Scan(cmd.Context(), args[0], image.Options{Platform: platform, Insecure: insecure})
			if err != nil {
				return err
			}
			log.Info("scanned", "image", args[0], "layers_read", stats.LayersRead, "layers_cached", stats.LayersCached, "image_cached", stats.ImageCached)
			s.Filter(canonicalSeverity(severity), ignoreUnfixed)
			out := cmd.OutOrStdout()
			if format == "json" {
				err = report.JSON(out, s)
			} else {
				err = report.Table(out, s)
			}
			if err != nil {
				return err
			}
			if exitCode != 0 && len(s.Vulnerabilities) > 0 {
				return &exitError{code: exitCode}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "table", "output format: table or json")
	f.StringVar(&severity, "severity", "", "report only findings of this severity or higher ("+strings.Join(model.Severities, ", ")+")")
	f.BoolVar(&ignoreUnfixed, "ignore-unfixed", false, "report only findings that have a fixed version")
	f.IntVar(&exitCode, "exit-code", 0, "exit with this status when findings remain after filtering")
	f.StringVar(&platform, "platform", "", "platform to pick from a multi-platform image (default linux/amd64)")
	f.BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS registries")
	return cmd
}

func canonicalSeverity(s string) string {
	for _, v := range model.Severities {
		if strings.EqualFold(v, s) {
			return v
		}
	}
	return ""
}

func validSeverity(s string) bool { return canonicalSeverity(s) != "" }
