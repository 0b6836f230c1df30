"""hakmem build variants: one table, one copts list, macros that expand them.

    load("//allocator:variants.bzl", "hakmem_library", "hakmem_test")

hakmem_library() (called once, in allocator/BUILD.bazel) compiles the
allocator once per variant in HAKMEM_VARIANTS and creates, for a variant
with suffix S ("" for release, "_debug" for debug):

    :hakmemS           static cc_library, alwayslink: linking it replaces malloc
    :libhakmemS.so     shared object (same sources, PIC), for LD_PRELOAD / -l
    :hakmemS_headers   public headers + the variant's defines, no code
    :hakmemS_shared    cc_import of libhakmemS.so (tests link it dynamically)

and, once, :internal_headers and :public_headers (private; see below).

hakmem_test(name, srcs, ...) creates one GoogleTest cc_test per variant
linked against the static library (<name>_release, <name>_debug) and, unless
shared = False, one per variant linked dynamically against the shared object
(<name>_shared_release, <name>_shared_debug), plus test_suite(name = name).
Every one of them gets //allocator:test_support (allocator/BUILD.bazel).
The test's sources are compiled once per variant (<name>_objs_<variant>)
and linked into both its static and its shared test.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_import", "cc_library", "cc_test")

# Compiler flags for the allocator's C sources, defined once.
#  -fvisibility=hidden: only symbols marked visibility("default") (malloc
#      family, hak_* API) are exported from libhakmem.so; internal calls are
#      direct, not through the PLT.
#  -ftls-model=initial-exec: __thread variables without __tls_get_addr, as
#      preloaded allocators do (the .so is loaded at startup, not dlopen'ed).
#  -fno-builtin-{malloc,...}: keep GCC from turning code inside the allocator
#      into calls to the malloc it implements (e.g. malloc+memset -> calloc).
#  -fno-tree-slp-vectorize: GCC would pair the two words a free writes into
#      a block (link, sealed tag) into one SSE store, four instructions
#      where two moves do; measured by the instruction gate.
#  -fno-sanitize=address: never ASan-instrumented, not even under
#      --config=asan (tool_hooks.h says why; HAKMEM_ASAN=1 turns its
#      poisoning on instead).
#  No -fno-plt: with hidden visibility the hot path makes no PLT calls, and
#      -fno-plt would only change calls into libc.
HAKMEM_COPTS = [
    "-std=c11",
    "-D_GNU_SOURCE",
    "-Wall",
    "-Wextra",
    "-Werror=implicit-function-declaration",
    "-fvisibility=hidden",
    "-ftls-model=initial-exec",
    "-fno-builtin-malloc",
    "-fno-builtin-free",
    "-fno-builtin-calloc",
    "-fno-builtin-realloc",
    "-fno-tree-slp-vectorize",
    "-fno-sanitize=address",
    "-pthread",
]

HAKMEM_LINKOPTS = ["-pthread"]

# Flags for the C++ (GoogleTest) tests.
HAKMEM_TEST_COPTS = [
    "-std=c++17",
    "-Wall",
    "-Wextra",
    "-pthread",
]

# The variant table. Adding a row adds a library, a shared object and one
# more test per hakmem_test().
#   name:          test-name suffix and test tag ("hakmem_" + name)
#   suffix:        target-name suffix (hakmemSUFFIX, libhakmemSUFFIX.so)
#   defines:       seen by the allocator, its public headers and its users
#   local_defines: seen by the allocator's sources only
#   copts:         added after HAKMEM_COPTS (and after Bazel's -c flags, so
#                  they win: the variant is the same under -c opt and -c dbg)
HAKMEM_VARIANTS = [
    struct(
        name = "release",
        suffix = "",
        defines = ["HAKMEM_BUILD_RELEASE=1"],
        local_defines = ["NDEBUG"],
        copts = ["-O2", "-fomit-frame-pointer"],
    ),
    struct(
        name = "debug",
        suffix = "_debug",
        defines = [
            "HAKMEM_BUILD_RELEASE=0",
            "HAKMEM_DEBUG=1",
        ],
        local_defines = [],
        # -UNDEBUG: assert() stays on even in the default -c opt build.
        copts = [
            "-g",
            "-O1",
            "-UNDEBUG",
        ],
    ),
]

# Proof variants for the regression gate (regression/BUILD.bazel): release
# plus HAKMEM_INJECT_WORK, a fixed amount of extra work in every malloc
# (allocator/api.c), which the gates must catch. Built by hakmem_library()
# like the rows above (:hakmem_inject, :libhakmem_inject.so) but NOT run
# through every test (hakmem_test and stress_workload iterate
# HAKMEM_VARIANTS only).  HAKMEM_INJECT_WORK=3 adds three "nop" loop
# iterations to every malloc: about +3% on a tiny malloc+free pair
# (regression/README.md).
HAKMEM_PROOF_VARIANTS = [
    struct(
        name = "inject",
        suffix = "_inject",
        defines = ["HAKMEM_BUILD_RELEASE=1"],
        local_defines = ["NDEBUG", "HAKMEM_INJECT_WORK=3"],
        copts = ["-O2", "-fomit-frame-pointer"],
        # variant_deps (ACE) of this suffix: release's, unchanged.
        dep_suffix = "",
    ),
    # The wall-clock proof: enough work per malloc to slow a workload by
    # about 10% (25 iterations: sh8bench -9.4%, larson -28% in the wall
    # gate's measure; regression/README.md).
    struct(
        name = "inject_wall",
        suffix = "_inject_wall",
        defines = ["HAKMEM_BUILD_RELEASE=1"],
        local_defines = ["NDEBUG", "HAKMEM_INJECT_WORK=25"],
        copts = ["-O2", "-fomit-frame-pointer"],
        dep_suffix = "",
    ),
    # Release without ACE linked in (no variant_deps): the instruction gate
    # run against it (//regression:gate_noace) shows what linking ACE costs
    # the allocation paths while ACE is off - nothing, by design (SPEC §2).
    struct(
        name = "noace",
        suffix = "_noace",
        defines = ["HAKMEM_BUILD_RELEASE=1"],
        local_defines = ["NDEBUG"],
        copts = ["-O2", "-fomit-frame-pointer"],
        no_variant_deps = True,
    ),
]

# Memory-checker variants (allocator/tool_hooks.h) for the tests in
# allocator/checkers/, which prove that memcheck and ASan report a
# program's heap errors through hakmem: debug and release with ASan's
# poisoning (HAKMEM_ASAN=1, the ASan runtime linked in), and release
# with Valgrind's client requests (HAKMEM_VALGRIND=1; debug always has
# them).  Built like the rows above, not run through every test.
HAKMEM_CHECKER_VARIANTS = [
    struct(
        name = "asan_debug",
        suffix = "_asan_debug",
        defines = [
            "HAKMEM_BUILD_RELEASE=0",
            "HAKMEM_DEBUG=1",
        ],
        local_defines = ["HAKMEM_ASAN=1"],
        copts = [
            "-g",
            "-O1",
            "-UNDEBUG",
        ],
        linkopts = ["-fsanitize=address"],
        dep_suffix = "_debug",
        no_shared = True,  # static only: a preloaded ASan runtime must come first
    ),
    struct(
        name = "asan_release",
        suffix = "_asan",
        defines = ["HAKMEM_BUILD_RELEASE=1"],
        local_defines = ["NDEBUG", "HAKMEM_ASAN=1"],
        copts = ["-O2", "-g"],
        linkopts = ["-fsanitize=address"],
        dep_suffix = "",
        no_shared = True,
    ),
    struct(
        name = "valgrind_release",
        suffix = "_valgrind",
        defines = ["HAKMEM_BUILD_RELEASE=1"],
        local_defines = ["NDEBUG", "HAKMEM_VALGRIND=1"],
        copts = ["-O2", "-g"],
        dep_suffix = "",
    ),
]

# Tags of a test that runs a program with LD_PRELOAD=libhakmem*.so (or
# links it dynamically): under --config=asan the program carries ASan,
# whose runtime refuses to start unless it is first in the library list,
# and first it would serve malloc itself - hakmem would not be under test.
# The statically linked tests cover hakmem under ASan.
PRELOAD_TAGS = ["no-asan"]

_GTEST_MAIN = "@com_google_googletest//:gtest_main"

def _pkg_label(name):
    # Labels of //allocator's targets (those hakmem_library() creates, and
    # :test_support), usable from any package.
    return Label("//allocator:" + name)

def hakmem_library(
        srcs,
        internal_hdrs,
        public_hdrs,
        include_prefix_strip = "include",
        variant_deps = [],
        visibility = ["//visibility:public"]):
    """Creates the per-variant allocator targets (see module docstring).

    Args:
      srcs: the allocator's C sources.
      internal_hdrs: private headers (not visible to users).
      public_hdrs: public headers under include_prefix_strip/.
      include_prefix_strip: users write #include "hakmem.h".
      variant_deps: libraries built once per variant and linked into that
        variant's library and shared object: each label gets the variant's
        suffix appended ("//ace:ace" -> //ace:ace, //ace:ace_debug).  They
        must be alwayslink and may depend on :hakmemS_headers only.
      visibility: of the libraries and shared objects users link.
    """

    # Internal headers for the package's own tests (white-box tests include
    # them; calling hidden functions links only against the static variants).
    cc_library(
        name = "internal_headers",
        hdrs = internal_hdrs,
        visibility = ["//visibility:private"],
    )

    # The public headers without any variant's defines, for code compiled
    # once and linked into the tests of every variant (:test_support).  Such
    # code must not carry one variant's defines into another's tests; users
    # take :hakmemS_headers (or the library) instead.
    cc_library(
        name = "public_headers",
        hdrs = public_hdrs,
        strip_include_prefix = include_prefix_strip,
        visibility = ["//visibility:private"],
    )

    for v in HAKMEM_VARIANTS + HAKMEM_PROOF_VARIANTS + HAKMEM_CHECKER_VARIANTS:
        lib = "hakmem" + v.suffix
        so = "libhakmem" + v.suffix + ".so"

        cc_library(
            name = lib,
            srcs = srcs + internal_hdrs,
            hdrs = public_hdrs,
            strip_include_prefix = include_prefix_strip,
            copts = HAKMEM_COPTS + v.copts,
            defines = v.defines,
            local_defines = v.local_defines,
            linkopts = HAKMEM_LINKOPTS + getattr(v, "linkopts", []),
            linkstatic = True,
            alwayslink = True,
            deps = [] if getattr(v, "no_variant_deps", False) else [
                d + getattr(v, "dep_suffix", v.suffix)
                for d in variant_deps
            ],
            visibility = visibility,
        )

        # Same objects (PIC), linked whole into a shared object.
        if getattr(v, "no_shared", False):
            continue
        cc_binary(
            name = so,
            deps = [":" + lib],
            linkshared = True,
            linkopts = HAKMEM_LINKOPTS + [
                "-Wl,-soname," + so,
                # An allocator must never be unloaded while blocks are live.
                "-Wl,-z,nodelete",
                # Drop the toolchain's -lstdc++ -lm: a C allocator needs libc only.
                "-Wl,--as-needed",
            ],
            visibility = visibility,
        )

        # Headers + defines without code, for linking against the .so.
        cc_library(
            name = lib + "_headers",
            hdrs = public_hdrs,
            strip_include_prefix = include_prefix_strip,
            defines = v.defines,
            visibility = visibility,
        )

        cc_import(
            name = lib + "_shared",
            shared_library = ":" + so,
            visibility = visibility,
        )

def hakmem_test(
        name,
        srcs,
        deps = [],
        copts = [],
        linkopts = [],
        tags = [],
        shared = True,
        internal = None,
        size = "small",
        **kwargs):
    """One GoogleTest cc_test per variant, and a test_suite `name` of them all.

    Creates <name>_<variant> (static library, always) and
    <name>_shared_<variant> (dynamically linked against libhakmem*.so;
    skipped if shared = False, which tests calling hidden internal functions
    need, since the .so exports only the public API).

    Args:
      name: test_suite name; the tests are named after it.
      srcs: test sources (*_test.cc).
      deps: extra deps (gtest_main, the allocator and //allocator:test_support
        are added).
      copts: extra copts after HAKMEM_TEST_COPTS.
      linkopts: extra linkopts.
      tags: e.g. ["exclusive", "no-remote"] for timing-sensitive tests.
      shared: also test against the shared object.
      internal: give the test the allocator's internal headers; default:
        True in //allocator, False elsewhere.
      size: test size (default "small": 60 s timeout).
      **kwargs: passed to every cc_test (timeout, args, data, env,
        shard_count, flaky, ...).
    """
    if internal == None:
        internal = native.package_name() == "allocator"
    # Every test gets the shared helpers (allocator/test_support.h).
    extra = [_pkg_label("test_support")]
    if internal:
        extra.append(_pkg_label("internal_headers"))

    tests = []
    for v in HAKMEM_VARIANTS:
        # The test's code, compiled once per variant (against its headers
        # and defines) and linked into both the static and the shared test:
        # compiling GoogleTest files is most of a test build's time.
        # alwayslink: nothing refers to the TEST()s, which register
        # themselves from static initialisers.
        objs = name + "_objs_" + v.name
        cc_library(
            name = objs,
            testonly = True,
            srcs = srcs,
            deps = deps + extra + [
                _pkg_label("hakmem" + v.suffix + "_headers"),
                _GTEST_MAIN,
            ],
            copts = HAKMEM_TEST_COPTS + copts,
            linkstatic = True,
            alwayslink = True,
            tags = tags,
            visibility = ["//visibility:private"],
        )

        t = name + "_" + v.name
        cc_test(
            name = t,
            deps = [
                ":" + objs,
                _pkg_label("hakmem" + v.suffix),
                _GTEST_MAIN,
            ],
            linkopts = HAKMEM_LINKOPTS + linkopts,
            # Link the allocator's objects into the binary (a cc_test
            # otherwise links its deps as Bazel-made shared libraries).
            linkstatic = True,
            tags = tags + ["hakmem_" + v.name],
            size = size,
            **kwargs
        )
        tests.append(":" + t)

        if shared:
            ts = name + "_shared_" + v.name
            cc_test(
                name = ts,
                deps = [
                    ":" + objs,
                    _pkg_label("hakmem" + v.suffix + "_shared"),
                    _GTEST_MAIN,
                ],
                linkopts = HAKMEM_LINKOPTS + linkopts,
                linkstatic = True,
                # no-tsan: ThreadSanitizer's runtime always comes first
                # in the program's symbol lookup, ahead of libhakmem.so,
                # so its malloc, not hakmem's, would serve the test.  The
                # statically linked twin runs under the tool instead.
                tags = tags + ["hakmem_" + v.name, "hakmem_shared", "no-tsan"] + PRELOAD_TAGS,
                size = size,
                **kwargs
            )
            tests.append(":" + ts)

    # No tags here: a test_suite's tags filter its tests.
    native.test_suite(
        name = name,
        tests = tests,
        tags = ["manual"] if "manual" in tags else [],
    )

def hakmem_tests_from_files(srcs, options = {}):
    """hakmem_test(name = "<file stem>", srcs = [file], **options[stem]) for
    each file in srcs (e.g. glob(["*_test.cc"])).

    Args:
      srcs: one test source per test.
      options: dict of test name -> dict of extra hakmem_test arguments.
    """
    names = [s[:-len(".cc")] if s.endswith(".cc") else s for s in srcs]
    for k in options:
        if k not in names:
            fail("hakmem_tests_from_files: options for %r, but no %s.cc" % (k, k))
    for src, name in zip(srcs, names):
        hakmem_test(name = name, srcs = [src], **options.get(name, {}))
