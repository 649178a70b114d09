#!/usr/bin/env bash
# Side by side: `dfpipe plan` and a no-op `dfpipe run` of the demo pipeline, for two dfpipe
# binaries (say, the previous commit's and this one's), in alternating rounds. Prints the
# median wall and CPU (user + sys) seconds of each and the ratios new/old.
#
#   benches/scripts/plan_and_rerun.sh OLD_DFPIPE NEW_DFPIPE [ROUNDS] [SCALE_FACTOR]
#
# Each binary gets its own copy of examples/tpch (stores of two versions cannot be shared),
# over the same generated data; both copies are run once first, so the reruns execute nothing.
set -euo pipefail
old=$1 new=$2 rounds=${3:-7} sf=${4:-0.1}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$new" gen tpch --scale-factor "$sf" --out "$work/data" > /dev/null
for side in old new; do
  mkdir -p "$work/$side/views"
  cp "$root/examples/tpch/dfpipe.toml" "$work/$side/"
  cp "$root"/examples/tpch/views/*.sql "$work/$side/views/"
  ln -s "$work/data" "$work/$side/data"
done
"$old" run "$work/old" > /dev/null 2>&1
"$new" run "$work/new" > /dev/null 2>&1

# Appends "wall cpu" seconds of one command to the file $1.
measure() {
  local out=$1; shift
  /usr/bin/env time -f "%e %U %S" -o "$work/t" "$@" > /dev/null 2>&1
  awk '{ printf "%s %.3f\n", $1, $2 + $3 }' "$work/t" >> "$out"
}
for _ in $(seq "$rounds"); do
  for side in old new; do
    bin=$old; [ "$side" = new ] && bin=$new
    measure "$work/$side.plan" "$bin" plan "$work/$side"
    measure "$work/$side.rerun" "$bin" run "$work/$side"
  done
done
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf "%-8s %10s %10s %10s %10s %8s %8s\n" what old_wall new_wall old_cpu new_cpu wall_x cpu_x
for what in plan rerun; do
  ow=$(cut -d' ' -f1 "$work/old.$what" | median); nw=$(cut -d' ' -f1 "$work/new.$what" | median)
  oc=$(cut -d' ' -f2 "$work/old.$what" | median); nc=$(cut -d' ' -f2 "$work/new.$what" | median)
  printf "%-8s %10s %10s %10s %10s %8.2f %8.2f\n" "$what" "$ow" "$nw" "$oc" "$nc" \
    "$(echo "$nw / $ow" | bc -l)" "$(echo "$nc / $oc" | bc -l)"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
