package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-scanner/vigil/internal/version"
)

func newVercmpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "vercmp FORMAT A B | vercmp FORMAT -",
		Short: "Compare two versions as dpkg, rpm or apk-tools would",
		Long: `Compare two versions by the rules of FORMAT: dpkg, rpm, apk (apk-tools 3)
or apk2 (apk-tools 2.x). Prints <, = or > (A is older, equal, newer).
With - it reads "A<TAB>B" lines from stdin and prints one answer per line,
"!" for a pair the tool would refuse. An invalid pair on the command line is
an error (exit 2).`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmp, ok := version.Lookup(args[0])
			if !ok {
				return fmt.Errorf("unknown version format %q: want dpkg, rpm, apk or apk2", args[0])
			}
			out := cmd.OutOrStdout()
			if len(args) == 3 {
				c, err := cmp.Compare(args[1], args[2])
				if err != nil {
					return err
				}
				fmt.Fprintln(out, symbol(c))
				return nil
			}
			if args[1] != "-" {
				return fmt.Errorf("want two versions, or - to read pairs from stdin")
			}
			sc := bufio.NewScanner(cmd.InOrStdin())
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			w := bufio.NewWriter(out)
			defer w.Flush()
			for line := 1; sc.Scan(); line++ {
				a, b, ok := strings.Cut(sc.Text(), "\t")
				if !ok {
					return fmt.Errorf("stdin line %d: want A<TAB>B", line)
				}
				c, err := cmp.Compare(a, b)
				if err != nil {
					fmt.Fprintln(w, "!")
					continue
				}
				fmt.Fprintln(w, symbol(c))
			}
			return sc.Err()
		},
	}
}

func symbol(c int) string {
	switch {
	case c < 0:
		return "<"
	case c > 0:
		return ">"
	}
	return "="
}
