#!/usr/bin/env bash
# Wall time and peak memory (max RSS) of whole `vigil scan` processes on the
# shared images: cold (empty layer cache), warm (layers cached, image not),
# and re-scan (image already indexed). Prints one line per run.
#   bench/scan.sh [IMAGE...]   (default: the Debian images of ../shared/testdata/images)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${VIGIL_TESTDATA:-../shared/testdata}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/vigil" ./cmd/vigil
images=("$@")
if [ ${#images[@]} -eq 0 ]; then
  images=("$data/images/debian12-minbase.docker.tar" "$data/images/debian12-layers.docker.tar" "$data/images/distroless-style.docker.tar")
fi
measure() { # label db image
  /usr/bin/time -f "%e %M" -o "$work/t" "$work/vigil" scan --db "$2" --format json "$3" >/dev/null
  read -r secs kb <"$work/t"
  printf '%-10s %-40s %6.2f s %7.1f MB\n' "$1" "$(basename "$3")" "$secs" "$(echo "$kb/1024" | bc -l)"
}
for img in "${images[@]}"; do
  db="$work/$(basename "$img").db"
  "$work/vigil" demo --dir "$work/demo" --db "$db" >/dev/null   # a warm vulnerability database
  measure cold "$db" "$img"
  measure rescan "$db" "$img"
  sqlite3 "$db" 'DELETE FROM image_index' 2>/dev/null && measure warm-layers "$db" "$img" || true
done
