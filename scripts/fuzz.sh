#!/usr/bin/env bash
# fuzz.sh [SECONDS]: run every Fuzz* target of the module for SECONDS each
# (default 30), one at a time, and report each result. Not part of the
# default test run. A failing input is kept by `go test` under the
# package's testdata/fuzz/<Target>/ for reproduction and as a regression
# seed; the script exits 1 when any target failed. Minimising each newly
# interesting input is capped at 2 s (Go's default, 60 s, lets a slow
# parser spend the whole run minimising, with its exec count standing
# still).
set -u
secs=${1:-30}
case $secs in '' | *[!0-9]*) echo "usage: $0 [seconds-per-target]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.." || exit 2
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
failed=0 total=0
printf '%-55s %-24s %8s  %s\n' PACKAGE TARGET SECONDS RESULT
for pkg in $(go list ./...); do
	targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz') || continue
	for target in $targets; do
		total=$((total + 1))
		out="$log/$total.txt"
		start=$(date +%s)
		if go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "${secs}s" -fuzzminimizetime 2s >"$out" 2>&1; then
			result=ok
		elif grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
			# Go 1.26's coordinator can fail a run at its deadline with no
			# input at fault (go.dev/issue/75804, fixed in Go 1.27).
			result="ok (deadline race, go.dev/issue/75804)"
		else
			result="FAIL (see below)"
			failed=$((failed + 1))
		fi
		execs=$(grep -o 'execs: [0-9]*' "$out" | tail -1)
		printf '%-55s %-24s %8s  %s %s\n' "${pkg#github.com/vigil-scanner/vigil/}" "$target" "$(($(date +%s) - start))" "$result" "${execs:+($execs)}"
		if [ "$result" != ok ]; then
			sed 's/^/    /' "$out" | tail -30
		fi
	done
done
echo "$total targets, $failed failed, ${secs}s each"
[ "$failed" -eq 0 ]
