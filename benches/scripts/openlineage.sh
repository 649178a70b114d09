#!/usr/bin/env bash
# The cost of OpenLineage events on a full run of the demo pipeline: `dfpipe run --full`
# without events, with `--openlineage file:PATH`, and with `--openlineage http://...` to a
# local endpoint (a small Python server answering 201), in alternating rounds. Prints the
# median wall and CPU (user + sys) milliseconds of each, and their differences to the run
# without events.
#
#   benches/scripts/openlineage.sh DFPIPE [ROUNDS] [SCALE_FACTOR]
set -euo pipefail
bin=$1 rounds=${2:-7} sf=${3:-0.1}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server"; rm -rf "$work"' EXIT
"$bin" gen tpch --scale-factor "$sf" --out "$work/data" > /dev/null
mkdir -p "$work/p/views"
cp "$root/examples/tpch/dfpipe.toml" "$work/p/"
cp "$root"/examples/tpch/views/*.sql "$work/p/views/"
ln -s "$work/data" "$work/p/data"
"$bin" run "$work/p" > /dev/null 2>&1

python3 - "$work/port" <<'PY' &
import http.server, sys
class Lineage(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Lineage)
open(sys.argv[1], "w").write(str(server.server_port))
server.serve_forever()
PY
server=$!
while [ ! -s "$work/port" ]; do sleep 0.1; done
url="http://127.0.0.1:$(cat "$work/port")"

# Appends "wall cpu" milliseconds of one command to the file $1.
measure() {
  local out=$1; shift
  /usr/bin/env time -f "%e %U %S" -o "$work/t" "$@" > /dev/null 2>&1
  awk '{ printf "%d %d\n", $1 * 1000, ($2 + $3) * 1000 }' "$work/t" >> "$out"
}
for _ in $(seq "$rounds"); do
  measure "$work/none" "$bin" run "$work/p" --full
  rm -f "$work/events.jsonl"
  measure "$work/file" "$bin" run "$work/p" --full --openlineage "file:$work/events.jsonl"
  measure "$work/http" "$bin" run "$work/p" --full --openlineage "$url"
done
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
wall0=$(cut -d' ' -f1 "$work/none" | median); cpu0=$(cut -d' ' -f2 "$work/none" | median)
printf "%-6s %8s %8s %8s %8s\n" events wall_ms vs_none cpu_ms vs_none
for what in none file http; do
  wall=$(cut -d' ' -f1 "$work/$what" | median); cpu=$(cut -d' ' -f2 "$work/$what" | median)
  printf "%-6s %8s %+8d %8s %+8d\n" "$what" "$wall" $(( wall - wall0 )) "$cpu" $(( cpu - cpu0 ))
done
echo "events per run: $(wc -l < "$work/events.jsonl"), $(wc -c < "$work/events.jsonl") bytes"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
