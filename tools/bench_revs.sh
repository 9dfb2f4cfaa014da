#!/bin/sh
# Speed of two or more revisions in one run: each is built in a worktree of its own under
# build/revs/, then this tree's bench/binding_ops.lua and bench/tiny_step.lua (on this
# tree's models/zoe-tiny) run on each build in turn, ROUNDS times interleaved, so load that
# comes and goes falls on all of them alike. Prints each case's best time per revision and
# its ratio to the first revision's (above 1: slower than the first).
# usage: sh tools/bench_revs.sh REV1 REV2 [REV...]    (ROUNDS=3 by default)
set -eu
[ $# -ge 2 ] || { echo "usage: $0 REV1 REV2 [REV...]" >&2; exit 2; }
here=$(pwd)
rounds=${ROUNDS:-3}
out=build/revs/results.txt
mkdir -p build/revs
: >"$out"
for rev in "$@"; do
  sha=$(git rev-parse --short "$rev")
  dir=build/revs/$sha
  [ -d "$dir" ] || git worktree add --detach "$dir" "$sha" >/dev/null
  make -C "$dir" -s all >/dev/null
done
for round in $(seq "$rounds"); do
  for rev in "$@"; do
    sha=$(git rev-parse --short "$rev")
    zoe="$here/build/revs/$sha/build/rel/bin/zoe"
    "$zoe" "$here/bench/binding_ops.lua" | awk -v r="$sha" '$1 == "RESULT" {print r, $2, $3}' >>"$out"
    "$zoe" "$here/bench/tiny_step.lua" "$here/models/zoe-tiny" 10 |
      awk -v r="$sha" '$1 == "RESULT" {print r, "tiny_step_" $2, $3 * 1e6}' >>"$out"
  done
done
first=$(git rev-parse --short "$1")
echo "best of $rounds interleaved rounds, us per op; ratio = revision / $first (load: $(cut -d' ' -f1-3 /proc/loadavg))"
awk -v first="$first" '
  { k = $1 SUBSEP $2; if (!(k in best) || $3 < best[k]) best[k] = $3
    if (!($2 in seen)) { seen[$2] = 1; names[++n] = $2 }
    if (!($1 in rseen)) { rseen[$1] = 1; revs[++m] = $1 } }
  END {
    printf "%-28s", "case"; for (j = 1; j <= m; j++) printf " %12s", revs[j]
    for (j = 2; j <= m; j++) printf " %9s", "ratio"; print ""
    for (i = 1; i <= n; i++) {
      printf "%-28s", names[i]
      for (j = 1; j <= m; j++) printf " %12.2f", best[revs[j], names[i]]
      for (j = 2; j <= m; j++) printf " %9.3f", best[revs[j], names[i]] / best[first, names[i]]
      print ""
    }
  }' "$out"
