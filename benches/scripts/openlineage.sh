#!/usr/bin/env bash
# The cost of OpenLineage events on a full run of the demo pipeline: `dfpipe run --full`
# without events, with `--openlineage file:PATH`, and with `--openlineage http://...` to a
# local endpoint (a small Python server answering 201), in alternating rounds. Prints the
# median wall milliseconds of each and the differences to the run without events.
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

# Appends the wall milliseconds of one command to the file $1.
measure() {
  local out=$1; shift
  local start end
  start=$(date +%s%N)
  "$@" > /dev/null 2>&1
  end=$(date +%s%N)
  echo $(( (end - start) / 1000000 )) >> "$out"
}
for _ in $(seq "$rounds"); do
  measure "$work/none" "$bin" run "$work/p" --full
  rm -f "$work/events.jsonl"
  measure "$work/file" "$bin" run "$work/p" --full --openlineage "file:$work/events.jsonl"
  measure "$work/http" "$bin" run "$work/p" --full --openlineage "$url"
done
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
none=$(median < "$work/none")
printf "%-6s %8s %8s\n" events wall_ms vs_none
for what in none file http; do
  m=$(median < "$work/$what")
  printf "%-6s %8s %+8d\n" "$what" "$m" $(( m - none ))
done
echo "events per run: $(wc -l < "$work/events.jsonl"), $(wc -c < "$work/events.jsonl") bytes"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
