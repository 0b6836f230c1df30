#!/usr/bin/env bash
# Smoke test of ab_ace (it times nothing): the usage contract, the
# Mann-Whitney and signed-rank p-values on known samples, a tiny A/B run of
# larson (paired on one CPU, the default, and --sequential) whose
# results.json must have the fields the report promises, and a quick oracle
# sweep (--sweep --quick, one rep) in each mode whose JSON must hold every
# static setting of the grid, the best of them and ACE on against it,
# screened and confirmed.
#   ab_ace_smoke_test.sh AB_ACE_PY LIBHAKMEM_SO LARSON
set -uo pipefail
py=$1 so=$2 larson=$3
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 "$py" --help >/dev/null || fail "--help exited $?"
python3 "$py" --reps 0 >/dev/null 2>&1
[[ $? -eq 2 ]] || fail "--reps 0 should exit 2"
python3 "$py" --workloads nosuch --hakmem "$so" --bin "larson=$larson" >/dev/null 2>&1
[[ $? -eq 2 ]] || fail "an unknown workload should exit 2"

python3 - "$py" <<'PY' || fail "Mann-Whitney U"
import importlib.util, sys
spec = importlib.util.spec_from_file_location("ab_ace", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
u, p = m.mann_whitney_u([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
assert u == 25 and abs(p - 2 / 252) < 1e-12, (u, p)       # exact, two-sided
u, p = m.mann_whitney_u([1, 2, 3], [1, 2, 3])
assert u == 4.5 and p == 1.0, (u, p)                         # ties, no difference
u, p = m.mann_whitney_u(list(range(20, 32)), list(range(12)))
assert u == 144 and p < 1e-4, (u, p)                         # normal approximation
assert m.signed_rank_p([1.1, 1.2, 1.05, 1.3, 1.01]) == 2 / 32  # all up: exact, two-sided
assert m.signed_rank_p([1.1, 1 / 1.1]) == 1.0                 # one up, one down as far
assert m.signed_rank_p([1.0, 1.0]) == 1.0                     # no difference
assert m.pair_ratios([dict(ok=True, pair=0, arm="off", ops_per_cpu_sec=2.0),
                      dict(ok=True, pair=0, arm="on", ops_per_cpu_sec=3.0),
                      dict(ok=True, pair=1, arm="on", ops_per_cpu_sec=5.0)],
                     "off", "on") == [1.5]                    # a lone run is no pair
PY
python3 "$py" --cpu 99999 --hakmem "$so" --bin "larson=$larson" >/dev/null 2>&1
[[ $? -eq 2 ]] || fail "a CPU this process cannot use should exit 2"

for mode in paired sequential; do
out=$TEST_TMPDIR/ab-$mode
python3 "$py" --hakmem "$so" --bin "larson=$larson" --workloads larson --reps 2 \
  --seconds 1 --quick --out "$out" $([[ $mode == sequential ]] && echo --sequential) >"$TEST_TMPDIR/stdout" 2>"$TEST_TMPDIR/stderr"
status=$?
cat "$TEST_TMPDIR/stderr" >&2
[[ $status -eq 0 ]] || fail "ab_ace exited $status"
grep -q "| larson |" "$TEST_TMPDIR/stdout" || fail "no Markdown row for larson"
[[ -s $out/results.md ]] || fail "no results.md"
python3 - "$out/results.json" "$mode" <<'PY' || exit 1
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"][0]
problems = []
def need(cond, what):
    if not cond: problems.append(what)
need(s["workload"] == "larson", "workload %r" % s["workload"])
need(s["runs"] == {"off": 2, "on": 2}, "runs %r" % s["runs"])
need(all(s["median_ops_per_sec"][a] > 0 for a in ("off", "on")), "medians %r" % s["median_ops_per_sec"])
need(s["ratio_on_off"] and s["ratio_on_off"] > 0, "ratio %r" % s["ratio_on_off"])
need(0 <= s["p_value"] <= 1, "p %r" % s["p_value"])
need(all(s["median_peak_rss_kb"][a] > 0 for a in ("off", "on")), "rss %r" % s["median_peak_rss_kb"])
need(all(s["median_ops_per_cpu_sec"][a] > 0 for a in ("off", "on")), "ops per CPU-s %r" % s["median_ops_per_cpu_sec"])
need(s["ace_cpu_percent_of_core"]["median"] is not None, "no ACE thread CPU share")
need(isinstance(s["final_knobs"], dict), "final knobs %r" % s["final_knobs"])
need(s["integrity_events"] == 0, "integrity events %r" % s["integrity_events"])
on = [r for r in d["runs"] if r["arm"] == "on"]
need(all(r["ace"]["stopped"] for r in on), "ACE did not log a clean stop in every on run")
off = [r for r in d["runs"] if r["arm"] == "off"]
need(all("ace" not in r for r in off), "off runs carry ACE figures")
need([r["arm"] for r in d["runs"]] == ["off", "on", "on", "off"], "not interleaved: %r" % [r["arm"] for r in d["runs"]])
if sys.argv[2] == "paired":
    # Each rep's two arms shared a pair number, and the ratio is the median
    # of the pairs' ratios of ops per CPU-second.
    need(d["paired"] and isinstance(d["cpu"], int), "not paired: %r %r" % (d["paired"], d["cpu"]))
    pairs = {}
    for r in d["runs"]:
        pairs.setdefault(r["pair"], {})[r["arm"]] = r["ops_per_cpu_sec"]
    need(len(pairs) == 2 and all(set(p) == {"off", "on"} for p in pairs.values()), "pairs %r" % pairs)
    ratios = sorted(p["on"] / p["off"] for p in pairs.values())
    need(abs(s["ratio_on_off"] - sum(ratios) / 2) < 1e-9, "ratio %r, pairs give %r" % (s["ratio_on_off"], ratios))
else:
    need(not d["paired"] and len({r["pair"] for r in d["runs"]}) == 1, "sequential runs were paired")
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
print("ok: ab_ace", sys.argv[2], s["ratio_on_off"], s["p_value"])
PY
done

for mode in paired sequential; do
sweep=$TEST_TMPDIR/sweep-$mode
python3 "$py" --hakmem "$so" --bin "larson=$larson" --workloads larson --sweep --quick \
  --out "$sweep" $([[ $mode == sequential ]] && echo --sequential) >"$TEST_TMPDIR/sweep.stdout" 2>"$TEST_TMPDIR/sweep.stderr"
status=$?
[[ $status -eq 0 ]] || { cat "$TEST_TMPDIR/sweep.stderr" >&2; fail "ab_ace --sweep exited $status"; }
grep -q "## Oracle" "$TEST_TMPDIR/sweep.stdout" || fail "no oracle table"
python3 - "$py" "$sweep/results.json" "$mode" <<'PY' || exit 1
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("ab_ace", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
d = json.load(open(sys.argv[2]))
problems = []
def need(cond, what):
    if not cond: problems.append(what)
grid = ["tls%d_drain%d" % (t, n) for t in m.SWEEP_TLS_SCALES for n in m.SWEEP_DRAINS]
need(d["sweep"]["grid"] == grid, "grid %r" % d["sweep"]["grid"])
w = d["sweep"]["workloads"][0]
need(w["workload"] == "larson", "workload %r" % w["workload"])
paired = sys.argv[3] == "paired"
arms = [r["arm"] for r in d["runs"] if r["phase"] == "rep"]
need(set(arms) == set(grid) - {m.DEFAULT_STATIC} | {"off", "on"}, "arms %r" % arms)
if paired:
    # Every static setting ran beside the default, once (one rep).
    vs = w["static_vs_default"]
    need(sorted(vs) == sorted(grid) and vs[m.DEFAULT_STATIC] == 1.0, "static settings %r" % vs)
    need(all(v > 0 for v in vs.values()), "a static ratio is not positive")
    need(w["best_static"] in grid and vs[w["best_static"]] == max(vs.values()), "best %r" % w["best_static"])
    need(len(arms) == 2 * len(grid), "rep runs %r" % arms)
    for g in set(grid) - {m.DEFAULT_STATIC}:
        pair = {r["pair"] for r in d["runs"] if r["arm"] == g and r["phase"] == "rep"}
        need(len(pair) == 1 and sorted(r["arm"] for r in d["runs"] if r["pair"] in pair) == sorted([g, "off"]),
             "%s did not run beside the default" % g)
else:
    need(sorted(w["static_ops_per_sec"]) == sorted(grid), "static settings %r" % sorted(w["static_ops_per_sec"]))
    need(all(v > 0 for v in w["static_ops_per_sec"].values()), "a static median is not positive")
    need(w["best_static"] in grid and w["best_ops_per_sec"] == max(w["static_ops_per_sec"].values()),
         "best %r" % w["best_static"])
    need(w["default_ops_per_sec"] == w["static_ops_per_sec"][m.DEFAULT_STATIC], "default is not ACE off")
    need(len(arms) == len(grid) + 1, "rep runs %r" % arms)
need(w["on_vs_best"] and w["on_vs_best"] > 0, "on/best %r" % w["on_vs_best"])
# The confirmation pass: ACE on against the best static setting again.
c = w.get("confirm") or {}
best_arm = "off" if w["best_static"] == m.DEFAULT_STATIC else w["best_static"]
need(c.get("runs") == ({"pairs": 1} if paired else {best_arm: 1, "on": 1}),
     "confirmation runs %r" % c.get("runs"))
need(c.get("on_vs_best") and c["on_vs_best"] > 0, "confirmed on/best %r" % c.get("on_vs_best"))
need([r["arm"] for r in d["runs"] if r["phase"] == "confirm"] == [best_arm, "on"],
     "confirmation order %r" % [r["arm"] for r in d["runs"] if r["phase"] == "confirm"])
# Static runs really ran with their settings, and nothing else from ACE.
env = {r["arm"]: m.arm_settings(r["arm"], []) for r in d["runs"]}
need("HAKMEM_TLS_CAP_SCALE=25" in env["tls25_drain32"] and "HAKMEM_DRAIN_THRESHOLD=32" in env["tls25_drain32"],
     "settings of tls25_drain32: %r" % env["tls25_drain32"])
on = [r for r in d["runs"] if r["arm"] == "on"][0]
need(on["ace"]["thread_cpu"] and on["ace"]["thread_cpu"]["percent_of_core"] >= 0, "no ACE CPU figure")
need(set(d["goals"]) >= {"ace_on_not_slower_than_off", "fragmentation_rss_after_free_drop",
                         "ace_thread_cpu", "ace_on_vs_best_static"}, "goals %r" % sorted(d["goals"]))
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
print("ok: ab_ace --sweep", sys.argv[3], w["best_static"], w["on_vs_best"])
PY
done
