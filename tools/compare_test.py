#!/usr/bin/env python3
"""Tests of compare.py: arguments, result parsing, summary, output files.

Nothing is timed: the end-to-end tests run testdata/fake_workload.sh, which
prints a canned result line at once.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402

COMPARE = os.path.join(HERE, "compare.sh")
FAKE = os.path.join(HERE, "testdata", "fake_workload.sh")
TMP = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp()

LINE = ('{"workload":"larson","allocator":"hakmem-release","threads":2,"ops":200,'
        '"seconds":2.0,"ops_per_sec":100.0,"peak_rss_kb":5000,"integrity_events":0,'
        '"classes":[{"size":16,"allocs":1}]}')


def read(path):
    with open(path) as f:
        return f.read()


def run_tool(args, env=None):
    e = dict(os.environ)
    e.pop("BUILD_WORKSPACE_DIRECTORY", None)
    e.update(env or {})
    return subprocess.run([COMPARE] + args, capture_output=True, text=True, env=e,
                          stdin=subprocess.DEVNULL)


class ParseResult(unittest.TestCase):
    def test_last_line(self):
        r = compare.parse_result("Throughput = 100 operations per second\n" + LINE + "\n\n")
        self.assertEqual(r["ops_per_sec"], 100.0)
        self.assertEqual(r["integrity_events"], 0)
        self.assertEqual(r["classes"][0]["size"], 16)

    def test_operations_alias(self):
        r = compare.parse_result(LINE.replace('"ops":', '"operations":'))
        self.assertEqual(r["ops"], 200)

    def test_peer_null_events(self):
        r = compare.parse_result(LINE.replace('"integrity_events":0', '"integrity_events":null'))
        self.assertIsNone(r["integrity_events"])

    def test_rejects(self):
        cases = {
            "": "printed nothing",
            LINE + "\nbye\n": "not JSON",
            LINE[:-5]: "not JSON",
            "[1, 2]": "not an object",
            LINE.replace('"ops_per_sec":100.0,', ""): "ops_per_sec is None",
            LINE.replace('"peak_rss_kb":5000', '"peak_rss_kb":"5000"'): "peak_rss_kb",
            LINE.replace('"seconds":2.0', '"seconds":true'): "seconds",
            LINE.replace('"integrity_events":0', '"integrity_events":"0"'): "integrity_events",
        }
        for text, why in cases.items():
            with self.assertRaises(compare.ResultError, msg=text) as cm:
                compare.parse_result(text)
            self.assertIn(why, str(cm.exception))


class Judge(unittest.TestCase):
    def run_(self, allocator="hakmem-release", workload="larson"):
        return {"run": 1, "workload": workload, "allocator": allocator, "timeout": 9}

    def test_ok(self):
        r = compare.judge(self.run_(), LINE, "", 0, False)
        self.assertEqual(r["status"], "ok")
        self.assertEqual(r["warnings"], [])

    def test_exit_status_and_stderr_tail(self):
        err = "".join("line %d\n" % i for i in range(40))
        r = compare.judge(self.run_(), LINE, err, -6, False)
        self.assertEqual(r["status"], "failed")
        self.assertIn("signal 6", r["reason"])
        self.assertTrue(r["stderr_tail"].endswith("line 39"))
        self.assertEqual(len(r["stderr_tail"].splitlines()), compare.STDERR_TAIL_LINES)

    def test_timeout(self):
        r = compare.judge(self.run_(), "", "", None, True)
        self.assertIn("timed out after 9 s", r["reason"])

    def test_wrong_allocator(self):
        r = compare.judge(self.run_(allocator="jemalloc"), LINE, "", 0, False)
        self.assertEqual(r["status"], "failed")
        self.assertIn("preload not in effect", r["reason"])

    def test_other_workload_name_warns(self):
        r = compare.judge(self.run_(workload="larson2"), LINE, "", 0, False)
        self.assertEqual(r["status"], "ok")
        self.assertEqual(len(r["warnings"]), 1)


def canned(workload, allocator, ops, rss=100, events=None, status="ok"):
    r = {"workload": workload, "allocator": allocator, "status": status}
    if status == "ok":
        r["result"] = {"ops_per_sec": ops, "peak_rss_kb": rss, "integrity_events": events}
    return r


class Summary(unittest.TestCase):
    def setUp(self):
        self.runs = [
            canned("w", "glibc", 10, 100), canned("w", "glibc", 30, 300),
            canned("w", "glibc", 20, 200),
            canned("w", "hakmem-release", 40, 50, 0), canned("w", "hakmem-release", 38, 70, 2),
            canned("w", "hakmem-release", 0, status="failed"),
            canned("w", "mimalloc", 0, status="failed"),
        ]
        self.s = compare.summarize(self.runs, ["w"], ["glibc", "hakmem-release", "mimalloc"])

    def test_medians_and_ratio(self):
        g, h, m = self.s["w"]
        self.assertEqual((g["median_ops_per_sec"], g["median_peak_rss_kb"]), (20, 200))
        self.assertEqual((h["median_ops_per_sec"], h["median_peak_rss_kb"]), (39, 60))
        self.assertAlmostEqual(g["ratio_to_best"], 20 / 39)
        self.assertEqual(h["ratio_to_best"], 1.0)
        self.assertEqual((g["min_ops_per_sec"], g["max_ops_per_sec"]), (10, 30))

    def test_failed_runs_counted_not_used(self):
        g, h, m = self.s["w"]
        self.assertEqual((h["runs_ok"], h["runs_failed"]), (2, 1))
        self.assertEqual((m["runs_ok"], m["runs_failed"]), (0, 1))
        self.assertIsNone(m["median_ops_per_sec"])
        self.assertIsNone(m["ratio_to_best"])

    def test_integrity_events(self):
        g, h, m = self.s["w"]
        self.assertIsNone(g["integrity_events"])
        self.assertEqual(h["integrity_events"], 2)

    def test_tables(self):
        t = compare.text_table(self.s["w"])
        self.assertIn("ratio to best", t)
        self.assertRegex(t, r"hakmem-release\s+39\s+1\.00\s+±2\.6%\s+60\s+2\s+2/3")
        self.assertRegex(t, r"mimalloc\s+no valid run")
        md = compare.markdown_table(self.s["w"])
        self.assertIn("| glibc | 20 | 0.51 | ±50.0% | 200 | - | 3/3 |", md)

    def test_extra_columns(self):
        runs = [canned("realloc", "glibc", 10), canned("realloc", "glibc", 12)]
        runs[0]["result"].update(p50_ns=100, p99_ns=3000)
        runs[1]["result"].update(p50_ns=200, p99_ns=5000)
        s = compare.summarize(runs, ["realloc"], ["glibc"])
        self.assertEqual(s["realloc"][0]["extra"], {"p50_ns": 150, "p99_ns": 4000})
        t = compare.text_table(s["realloc"], compare.extras("realloc"))
        self.assertRegex(t, r"p50 ns\s+p99 ns\s+runs ok")
        self.assertRegex(t, r"glibc .* 150\s+4,000\s+2/2")

    def test_chart_data(self):
        d = compare.chart_data(self.s, ["w"], ["glibc", "hakmem-release", "mimalloc"])
        self.assertEqual(d.splitlines()[1], '"w" 0.5128 1.0000 ?')

    def test_shared_core_metric(self):
        runs = [dict(canned("w", "glibc", 10), vs_glibc=v) for v in (0.98, 1.0, 1.03)]
        runs += [dict(canned("w", "hakmem-release", 10), vs_glibc=v) for v in (1.5, 1.6)]
        # A run whose glibc partner failed has no ratio and is not counted.
        runs.append(canned("w", "hakmem-release", 0, status="failed"))
        s = compare.summarize(runs, ["w"], ["glibc", "hakmem-release"], "shared")
        g, h = s["w"]
        self.assertEqual((g["median_vs_glibc"], h["median_vs_glibc"]), (1.0, 1.55))
        self.assertNotIn("median_ops_per_sec", h)
        self.assertAlmostEqual(g["ratio_to_best"], 1.0 / 1.55)
        self.assertEqual((h["runs_ok"], h["runs_failed"]), (2, 1))
        t = compare.text_table(s["w"], (), "shared")
        self.assertRegex(t, r"median x glibc")
        self.assertRegex(t, r"hakmem-release\s+1\.550\s+1\.00\s+±3\.2%")


class Arguments(unittest.TestCase):
    def test_defaults(self):
        a = compare.parse_args([])
        self.assertEqual((a.runs, a.threads, a.seconds), (5, 2, compare.SECONDS["normal"]))
        self.assertEqual(a.workloads, list(compare.WORKLOADS))
        self.assertEqual(a.allocators, compare.ALLOCATORS)
        self.assertEqual(len(a.workloads), 6)

    def test_quick(self):
        a = compare.parse_args(["--quick"])
        self.assertEqual((a.runs, a.seconds), (3, compare.SECONDS["quick"]))
        a = compare.parse_args(["--quick", "--runs", "7"])
        self.assertEqual(a.runs, 7)

    def test_lists(self):
        a = compare.parse_args(["--workloads", "mid_mt,larson,larson", "--allocators",
                                "glibc, hakmem-debug"])
        self.assertEqual(a.workloads, ["mid_mt", "larson"])
        self.assertEqual(a.allocators, ["glibc", "hakmem-debug"])

    def test_workload_table(self):
        self.assertEqual(compare.workload_argv("larson", "normal", 4)[0], "2")
        self.assertEqual(compare.workload_argv("larson", "quick", 4)[-1], "4")
        for w in compare.WORKLOADS:
            for mode in ("normal", "quick"):
                argv = compare.workload_argv(w, mode, 2)
                self.assertFalse(any("{" in x for x in argv), (w, mode))
                self.assertIn("2", argv)
            for field, header, fmt in compare.WORKLOADS[w].get("extra", []):
                self.assertTrue(compare._fmt(fmt, 1234.5), (w, field))

    def test_bad_arguments_exit_2(self):
        for args in (["--workloads", "nosuch"], ["--workloads", "larson,"],
                     ["--allocators", "ptmalloc"], ["--runs", "x"], ["--runs", "0"],
                     ["--runs"], ["--threads", "-1"], ["--threads", "two"],
                     ["--timeout", "1.5"], ["--bogus"], ["extra"],
                     ["--bin", "nosuch=/bin/true"], ["--bin", "larson"]):
            p = run_tool(args)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn("usage:", p.stderr, args)
            self.assertEqual(p.stdout, "", args)

    def test_help(self):
        p = run_tool(["--help"])
        self.assertEqual(p.returncode, 0, p.stderr)
        for word in ("--workloads", "--allocators", "--runs", "--threads", "--quick", "--out"):
            self.assertIn(word, p.stdout)


class EndToEnd(unittest.TestCase):
    """The whole tool on the fake workload, under glibc and a fake hakmem."""

    @classmethod
    def setUpClass(cls):
        cls.bindir = os.path.join(TMP, "bin")
        os.makedirs(cls.bindir, exist_ok=True)
        for w in compare.WORKLOADS:
            link = os.path.join(cls.bindir, w)
            if not os.path.lexists(link):
                os.symlink(FAKE, link)
        # Not an ELF object: ld.so says so and carries on; the fake reads
        # LD_PRELOAD to name the allocator.
        cls.so = os.path.join(TMP, "libhakmem.so")
        open(cls.so, "w").close()
        cls.nolibs = os.path.join(TMP, "nolibs")
        os.makedirs(cls.nolibs, exist_ok=True)

    def tool(self, args, **env):
        e = {"HAKMEM_COMPARE_LIBDIR": self.nolibs,
             "FAKE_COUNTER": os.path.join(TMP, "counter-%d" % id(args))}
        e.update(env)
        return run_tool(args, e)

    def bins(self, names=None):
        out = []
        for w in names or compare.WORKLOADS:
            out += ["--bin", "%s=%s" % (w, os.path.join(self.bindir, w))]
        return out

    def test_all_workloads_interleaved(self):
        out = os.path.join(TMP, "out-all")
        p = self.tool(self.bins() + ["--hakmem-release", self.so, "--allocators",
                                     "glibc,mimalloc,hakmem-release", "--runs", "2",
                                     "--out", out],
                      FAKE_FAIL="realloc", FAKE_NOJSON="large_ws", FAKE_EVENTS="mid_mt")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("skipping allocator mimalloc", p.stdout)
        self.assertIn("install libmimalloc-dev", p.stdout)
        self.assertIn("FAILED: realloc under glibc: exit status 3", p.stdout)
        self.assertIn("| fake realloc: giving up", p.stdout)
        self.assertIn("FAILED: large_ws under hakmem-release: last line is not JSON", p.stdout)
        self.assertIn("mid_mt under hakmem-release, runs 1,2 of 2: 1 integrity events", p.stdout)
        self.assertIn("realloc under glibc, runs 1,2 of 2: failed: exit status 3", p.stdout)

        doc = json.loads(read(os.path.join(out, "results.json")))
        runs = doc["runs"]
        self.assertEqual(len(runs), 2 * 6 * 2)
        order = [(r["run"], r["workload"], r["allocator"]) for r in runs]
        self.assertEqual(order, [(n, w, a) for n in (1, 2) for w in compare.WORKLOADS
                                 for a in ("glibc", "hakmem-release")])
        self.assertEqual(sum(r["status"] != "ok" for r in runs), 8)
        self.assertEqual(doc["skipped_allocators"][0]["name"], "mimalloc")
        s = {r["allocator"]: r for r in doc["summary"]["larson"]}
        self.assertEqual(s["hakmem-release"]["ratio_to_best"], 1.0)
        self.assertAlmostEqual(s["glibc"]["ratio_to_best"], 0.5, places=3)
        self.assertEqual(s["hakmem-release"]["integrity_events"], 0)
        self.assertIsNone(s["glibc"]["integrity_events"])
        self.assertEqual(doc["summary"]["realloc"][0]["runs_failed"], 2)
        self.assertEqual(doc["summary"]["mid_mt"][1]["integrity_events"], 2)

        md = read(os.path.join(out, "results.md"))
        self.assertIn("## larson", md)
        self.assertIn("| hakmem-release |", md)
        self.assertIn("## Problems", md)
        if compare.shutil.which("gnuplot"):
            for f in ("chart.svg", "chart.png"):
                self.assertGreater(os.path.getsize(os.path.join(out, f)), 1000, f)

    def test_shared_core(self):
        out = os.path.join(TMP, "out-shared")
        p = self.tool(self.bins(["larson", "realloc"]) + [
            "--hakmem-release", self.so, "--workloads", "larson,realloc", "--allocators",
            "glibc,hakmem-release", "--runs", "2", "--shared-core", "--out", out],
            FAKE_FAIL="realloc", FAKE_FAIL_UNDER="glibc")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("each with a glibc run on its CPU", p.stdout)
        self.assertIn("run 1/2 larson        glibc x1.000  hakmem-release x2.000", p.stdout)
        self.assertIn("FAILED: realloc under hakmem-release: its glibc partner failed: "
                      "exit status 3", p.stdout)
        doc = json.loads(read(os.path.join(out, "results.json")))
        self.assertEqual(doc["settings"]["metric"], "shared")
        # Each allocator's run is listed once; its glibc partner rides along in it.
        runs = [r for r in doc["runs"] if r["workload"] == "larson"]
        self.assertEqual([r["allocator"] for r in runs], ["glibc", "hakmem-release"] * 2)
        for r in runs:
            self.assertEqual(r["partner"]["status"], "ok")
            self.assertEqual(len(r["cpus"]), 1)
        s = {r["allocator"]: r for r in doc["summary"]["larson"]}
        self.assertEqual((s["glibc"]["median_vs_glibc"], s["hakmem-release"]["median_vs_glibc"]),
                         (1.0, 2.0))
        self.assertEqual(s["hakmem-release"]["runs_ok"], 2)
        self.assertEqual(doc["summary"]["realloc"][1]["runs_failed"], 2)
        self.assertIn("each sharing one CPU with a glibc run (--shared-core)",
                      read(os.path.join(out, "results.md")))

    def test_shared_core_fills_every_cpu(self):
        # One allocator, so a round has CPUs to spare: each spare runs a
        # glibc pair that is not reported, so the run had busy neighbours.
        calls = os.path.join(TMP, "calls-fill")
        out = os.path.join(TMP, "out-fill")
        p = self.tool(self.bins(["larson"]) + [
            "--hakmem-release", self.so, "--workloads", "larson", "--allocators",
            "hakmem-release", "--runs", "1", "--shared-core", "--out", out],
            FAKE_CALLS=calls)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        runs = json.loads(read(os.path.join(out, "results.json")))["runs"]
        self.assertEqual([r["allocator"] for r in runs], ["hakmem-release"])
        cpus = len(os.sched_getaffinity(0))
        self.assertEqual(sorted(read(calls).split()),
                         ["glibc"] * (2 * cpus - 1) + ["hakmem-release"])

    def test_signal_and_timeout(self):
        out = os.path.join(TMP, "out-signal")
        p = self.tool(self.bins(["larson", "sh8bench"]) + [
            "--workloads", "larson,sh8bench", "--allocators", "glibc", "--runs", "1",
            "--timeout", "1", "--out", out], FAKE_SLEEP="larson", FAKE_SEGV="sh8bench")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("FAILED: larson under glibc: timed out after 1 s", p.stdout)
        self.assertIn("FAILED: sh8bench under glibc: exit status -11 (signal 11)", p.stdout)
        self.assertIn("| fake sh8bench: about to crash", p.stdout)

    def test_peak_rss_is_the_workload_own(self):
        # Linux keeps the RSS high-water mark (ru_maxrss) across fork and
        # exec: a child started straight from this interpreter, grown here by
        # 128 MiB, would report at least that; started by launcher() it
        # reports its own.
        ballast = bytearray(128 << 20)
        for i in range(0, len(ballast), 4096):
            ballast[i] = 1
        probe = [sys.executable, "-c", "import resource; "
                 "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"]
        direct = int(subprocess.run(probe, capture_output=True, text=True).stdout)
        launched = int(subprocess.run(compare.launcher("", 10) + probe, capture_output=True,
                                      text=True).stdout)
        del ballast
        self.assertGreater(direct, 128 << 10)
        self.assertLess(launched, 64 << 10)

    def test_clean_run_exits_0(self):
        out = os.path.join(TMP, "out-clean")
        p = self.tool(self.bins(["larson"]) + ["--workloads", "larson", "--allocators",
                                               "glibc", "--quick", "--out", out])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("wrote " + out, p.stdout)
        self.assertEqual(len(json.loads(read(os.path.join(out, "results.json")))["runs"]), 3)

    def test_workload_not_built(self):
        out = os.path.join(TMP, "out-missing")
        p = self.tool(self.bins(["larson"]) + ["--allocators", "glibc", "--runs", "1",
                                               "--out", out])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("skipping workload sh8bench: //stress:sh8bench is not built", p.stdout)
        doc = json.loads(read(os.path.join(out, "results.json")))
        self.assertEqual(len(doc["missing_workloads"]), 5)
        self.assertEqual(len(doc["runs"]), 1)

    def test_hakmem_not_passed(self):
        p = self.tool(self.bins(["larson"]) + ["--workloads", "larson", "--allocators",
                                               "hakmem-debug", "--runs", "1"])
        self.assertEqual(p.returncode, 1)
        self.assertIn("skipping allocator hakmem-debug", p.stdout)
        self.assertIn("nothing to run", p.stderr)


if __name__ == "__main__":
    unittest.main()
