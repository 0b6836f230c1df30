#!/usr/bin/env python3
"""aa_summary.py on canned gate results: the per-workload figures and the
worst drop as a share of the limit, and bad input (exit 2)."""
import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aa_summary  # noqa: E402


def doc(*rows):
    return {"results": [dict(gate="wall", name=n, delta_percent=d, limit_percent=l,
                             verdict=v, cv=0.05) for n, d, l, v in rows] +
            [{"gate": "instr", "name": "tier_loop_pair", "delta_percent": -50.0}]}


class Summary(unittest.TestCase):
    def setUp(self):
        self.rows = aa_summary.summarize([
            doc(("larson", -4.0, 10.0, "pass"), ("realloc", 2.0, 20.0, "pass")),
            doc(("larson", 1.0, 10.0, "pass"), ("realloc", -15.0, 20.0, "warn")),
            doc(("larson", -12.0, 10.0, "FAIL"))])

    def test_figures(self):
        self.assertEqual(self.rows["larson"]["deltas"], [-4.0, 1.0, -12.0])
        self.assertEqual(self.rows["realloc"]["verdicts"], {"pass": 1, "warn": 1})
        self.assertNotIn("tier_loop_pair", self.rows)

    def test_worst_share_of_the_limit(self):
        self.assertAlmostEqual(aa_summary.worst_share(self.rows["larson"]), 1.2)
        self.assertAlmostEqual(aa_summary.worst_share(self.rows["realloc"]), 0.75)
        rises = {"deltas": [3.0, 1.0], "limits": [5.0, 5.0]}
        self.assertEqual(aa_summary.worst_share(rises), 0.0)

    def test_table(self):
        t = aa_summary.table(self.rows)
        self.assertRegex(t, r"larson\s+3\s+-4\.0%\s+-12\.0%\s+\+1\.0%\s+10\.0%\s+1\.20  FAIL 1, pass 2")

    def test_bad_input_exits_2(self):
        err = io.StringIO()
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            self.assertEqual(aa_summary.main([]), 2)
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                f.write("{not json")
            self.assertEqual(aa_summary.main([f.name]), 2)
            with open(f.name, "w") as g:
                json.dump({"results": []}, g)
            self.assertEqual(aa_summary.main([f.name]), 2)
            os.unlink(f.name)
        self.assertIn("usage:", err.getvalue())
        self.assertIn("no wall results", err.getvalue())


if __name__ == "__main__":
    unittest.main(verbosity=2)
