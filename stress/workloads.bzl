"""stress_workload(): a workload binary and its short-run tests.

    load("//stress:workloads.bzl", "stress_workload")
    stress_workload(name = "larson", srcs = ["larson.c"], short_args = [...])

creates :larson (linked to the system allocator, run under any allocator by
preloading it) and, per allocator variant of //allocator:variants.bzl,
:larson_short_<variant>: a few seconds of the workload under that variant's
shared object, asserting a valid result line with zero integrity events,
plus the usage contract (--help exits 0, a bad argument exits 2).
"""

load("@rules_cc//cc:defs.bzl", "cc_binary")
load("//allocator:variants.bzl", "HAKMEM_VARIANTS", "PRELOAD_TAGS")

STRESS_COPTS = ["-std=c11", "-O2", "-D_GNU_SOURCE", "-Wall", "-Wextra"]

def stress_workload(name, srcs, short_args, bad_args = ["--no-such-flag"], deps = []):
    """The workload binary and its short-run tests (see the module docstring).

    Args:
      name: workload name, as the binary prints it in its result.
      srcs: the workload's sources.
      short_args: arguments for a run of a few seconds.
      bad_args: an argument list the workload must reject with exit 2.
      deps: extra deps.
    """
    cc_binary(
        name = name,
        srcs = srcs,
        copts = STRESS_COPTS,
        linkopts = ["-pthread", "-ldl", "-lm"],
        deps = deps + [":workload"],
        visibility = ["//visibility:public"],
    )
    for v in HAKMEM_VARIANTS:
        so = "//allocator:libhakmem" + v.suffix + ".so"
        native.sh_test(
            name = name + "_short_" + v.name,
            srcs = ["short_run_test.sh"],
            args = [
                "$(location :" + name + ")",
                "$(location " + so + ")",
                name,
                ",".join(bad_args),
            ] + short_args,
            data = [":" + name, so],
            size = "small",
            tags = ["hakmem_" + v.name] + PRELOAD_TAGS,  # runs under LD_PRELOAD
        )
