"""libFuzzer harnesses for hakmem, one binary per harness and allocator variant.

    load(":fuzz.bzl", "hakmem_fuzzer")
    hakmem_fuzzer(name = "ops", src = "ops_fuzz.c", test_args = [...])

creates, for every row of HAKMEM_VARIANTS (//allocator:variants.bzl):

    :<name>_fuzzer_<variant>   the fuzzer binary (a genrule: clang -fsanitize=fuzzer
                               over the harness and the allocator's sources)
    :<name>_<variant>_test     sh_test: the checked-in corpus, then a bounded
                               fuzzing run (test_args)
    :<name>, :<name>_debug     sh_binary for long runs (bazel run), tagged manual

Bazel's C toolchain here is gcc, which has no libFuzzer, so the binary is
built by a genrule calling Debian's clang (ci/setup.sh installs it and the
libFuzzer runtime).  The allocator is compiled into the binary with the
variant's own flags and defines: its malloc is the process's malloc, so
hakmem serves libFuzzer's allocations as well as the harness's, and its
code is coverage-instrumented like the harness.  No AddressSanitizer: it
would replace malloc and free with its own, and the fuzzed allocator would
be ASan's, not hakmem.  The harnesses' shadow model takes its place.
"""

load("//allocator:variants.bzl", "HAKMEM_COPTS", "HAKMEM_VARIANTS")

# No comparison tracing: libFuzzer would read the operands of hakmem's own
# checks - the secret-keyed free tags - and write them into its inputs;
# its copy of an input that starts with a block's tag then looks like a
# free block to free, a forged "double free" no real program can make
# without the secret.  Edge coverage still guides it through the allocator.
#
# DWARF 4, not clang's default 5: memcheck (Valgrind 3.19) cannot read
# DWARF 5 line tables, gives up on the binary and ends the run.
_FUZZ_COPTS = ["-fsanitize=fuzzer", "-fno-sanitize-coverage=trace-cmp", "-gdwarf-4"]

def _variant_flags(v):
    return (HAKMEM_COPTS + v.copts + _FUZZ_COPTS +
            ["-D" + d for d in v.defines + v.local_defines])

def hakmem_fuzzer(name, src, test_args, settings = [], corpus = None, test_timeout = "short",
                  tags = []):
    """Fuzzer binaries, bounded tests and long-run launchers for one harness.

    Args:
      name: harness name; its corpus is fuzz/corpus/<name>/.
      src: the harness (C, defines LLVMFuzzerTestOneInput).
      test_args: libFuzzer flags of the bounded CI run.
      settings: NAME=VALUE hakmem settings (environment) for every run.
      corpus: corpus glob (default corpus/<name>/*).
      test_timeout: the sh_test's timeout.
      tags: extra tags of the sh_tests (no-<config>, with the reason
        beside them in BUILD).
    """
    corpus_files = native.glob([corpus or "corpus/%s/*" % name])
    for v in HAKMEM_VARIANTS:
        binary = "%s_fuzzer_%s" % (name, v.name)
        native.genrule(
            name = binary + "_build",
            srcs = [src, "shadow.c", "shadow.h", "//allocator:fuzz_sources"],
            outs = [binary],
            cmd = " ".join([
                "clang",
                " ".join(_variant_flags(v)),
            ]) + select({
                # --config=valgrind's client requests (.bazelrc), which its
                # --copt cannot bring to a genrule.
                "//fuzz:valgrind": " -DHAKMEM_VALGRIND=1 ",
                "//conditions:default": " ",
            }) + " ".join([
                "-I allocator -I allocator/include",
                # The group's sources, not its headers (found by -I).
                "$$(for f in $(locations //allocator:fuzz_sources); do",
                "case $$f in *.c) echo $$f;; esac; done)",
                "$(location shadow.c) $(location %s)" % src,
                "-pthread -o $@",
                "|| { echo 'fuzz: needs clang and libclang-rt-dev (ci/setup.sh)' >&2; exit 1; }",
            ]),
            executable = True,
            tags = ["no-remote"],
        )
        native.sh_test(
            name = "%s_%s_test" % (name, v.name),
            srcs = ["run_fuzzer.sh"],
            args = ["--test", "$(location :%s)" % binary, "fuzz/corpus/" + name] +
                   settings + test_args,
            data = [":" + binary] + corpus_files,
            timeout = test_timeout,
            tags = ["hakmem_" + v.name, "fuzz"] + tags,
        )
        native.sh_binary(
            name = name + v.suffix,
            srcs = ["run_fuzzer.sh"],
            args = ["--long", "$(location :%s)" % binary, "fuzz/corpus/" + name] + settings,
            data = [":" + binary],
            tags = ["manual"],
        )
