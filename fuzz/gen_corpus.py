#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/<harness>/ (named seed-*).

Each seed is a small program in the harness's input format (ops_fuzz.c,
corrupt_fuzz.c: the decoders there are the format's definition), chosen so
that a fuzzing run starts from every path worth reaching: every tier and
operation for ops, every kind of corruption for corrupt.  Inputs named
regress-* are crashes the fuzzers found, kept as regression tests; cov-*
are the smallest set of inputs from fuzzing runs that reaches every edge
those runs reached (-set_cover_merge=1 -use_counters=0).  This script
leaves both alone.

    python3 fuzz/gen_corpus.py          # rewrites the seed-* files
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u16(x):
    return list(struct.pack("<H", x))


# ---- ops_fuzz.c ------------------------------------------------------------

def tiny(n):
    return [0] + u16(n)


def mid(n):
    return [1] + u16(n - 1025)


def large(n, shift=0):
    return [2 | shift << 2] + u16((n - 65537) >> shift)


def edge(i):
    return [3] + u16(i)


N_EDGES = 45  # entries of edge_sizes[] in shadow.c


def op(code, slot, *operands):
    out = [code, slot]
    for o in operands:
        out += o if isinstance(o, list) else [o]
    return out


MALLOC, CALLOC, REALLOC, ALIGNED, FREE = 0, 3, 4, 6, 7
USABLE, CHECK, REMOTE, HAKCALL, EDGES, PAIR = 10, 11, 12, 13, 14, 15


def ops_seeds():
    s = {}
    s["tiny-classes"] = sum((op(MALLOC, i, tiny(n)) for i, n in
                             enumerate([0, 1, 16, 17, 32, 48, 100, 128, 129, 200,
                                        256, 384, 512, 640, 768, 1000, 1024])), []) + \
        sum((op(FREE, i) for i in range(0, 17, 2)), [])
    s["mid-classes"] = sum((op(MALLOC, i, mid(n)) for i, n in
                            enumerate([1025, 1500, 2048, 3000, 4096, 6000, 8192, 12000,
                                       16384, 24576, 32768, 49152, 65536])), []) + \
        sum((op(CHECK, i) for i in range(13)), [])
    s["large"] = op(MALLOC, 0, large(65537)) + op(MALLOC, 1, large(70000, 2)) + \
        op(MALLOC, 2, large(65537 + (3000 << 6), 6)) + op(FREE, 1) + \
        op(MALLOC, 1, large(70000, 2)) + op(FREE, 0) + op(FREE, 2)
    s["realloc-climb"] = op(REALLOC, 0, tiny(16)) + op(REALLOC, 0, tiny(100)) + \
        op(REALLOC, 0, tiny(1000)) + op(REALLOC, 0, mid(5000)) + \
        op(REALLOC, 0, mid(65536)) + op(REALLOC, 0, large(70000)) + \
        op(REALLOC, 0, large(65537 + (8000 << 6), 6)) + op(REALLOC, 0, large(90000)) + \
        op(REALLOC, 0, tiny(1000)) + op(REALLOC, 0, tiny(0))
    s["realloc-array"] = op(MALLOC, 3, tiny(64)) + op(REALLOC | 0x10, 3, mid(2000)) + \
        op(REALLOC | 0x10, 3, tiny(8))
    s["calloc"] = op(CALLOC, 0, tiny(100)) + op(CALLOC | 0x30, 1, mid(4000)) + \
        op(CALLOC | 0xf0, 2, large(100000)) + op(FREE, 1) + op(CALLOC, 1, mid(4000))
    s["aligned"] = sum((op(ALIGNED | (lg % 3) << 4, lg, lg, tiny(lg * 40))
                        for lg in range(21)), [])
    s["aligned-large"] = sum((op(ALIGNED | (lg % 3) << 4, lg, lg, large(70000))
                              for lg in range(12, 21)), [])
    s["usable"] = op(MALLOC, 0, tiny(17)) + op(USABLE, 0) + op(MALLOC, 1, mid(3000)) + \
        op(USABLE, 1) + op(MALLOC, 2, large(70000)) + op(USABLE, 2) + op(CHECK, 0) + \
        op(REALLOC, 0, tiny(100)) + op(USABLE, 5)
    s["remote"] = sum((op(MALLOC, i, tiny(48)) for i in range(8)), []) + \
        sum((op(REMOTE, i) for i in range(8)), []) + op(MALLOC, 9, mid(2000)) + \
        op(REMOTE, 9) + sum((op(MALLOC, i, tiny(48)) for i in range(8)), [])
    s["hak-calls"] = op(MALLOC, 0, tiny(32)) + op(FREE, 0) + op(HAKCALL, 0) + \
        op(HAKCALL | 0x10, 0) + op(HAKCALL | 0x20, 0) + op(HAKCALL | 0x30, 0, 2) + \
        sum((op(PAIR, 0, tiny(8)) for _ in range(6)), [])
    s["edges"] = sum((op(MALLOC, i % 64, edge(i)) for i in range(N_EDGES)), [])
    s["edge-ops"] = op(EDGES, 4, tiny(10)) + op(EDGES, 4, mid(2000)) + \
        op(FREE, 4) + op(PAIR, 0, large(80000))
    s["reuse"] = sum((op(MALLOC, 7, tiny(64)) + op(FREE, 7) for _ in range(12)), [])
    return s


# ---- corrupt_fuzz.c --------------------------------------------------------

def csize(kind, n):
    """pick_size(): tiny 16..1024, mid 1025..8191, large 64 KiB+1.."""
    if kind == "tiny":
        return [0] + u16(n - 16)
    if kind == "mid":
        return [5] + u16(n - 1025)
    return [7] + u16(n - 65537)


def corrupt_input(size, blocks=8, freed=0xAA, flush=0, cap=0, victim=0, word=0,
                  value=(0, 5, 0x40), steps=()):
    out = size + [cap, blocks - 2] + list(struct.pack("<I", freed)) + [flush]
    out += [victim, word] + list(value)
    for st in steps:
        out += st
    return out


def mallocs(k, first=40):
    return [[0, first + i] for i in range(k)]


FLIP, OTHER, ZERO, SELF, SHIFT = 0, 1, 2, 3, 4
VERIFY, FLUSH, AGAIN = 9, 10, 11  # op % 12; 0x83 is AGAIN with bit 7 set: realloc it


def corrupt_seeds():
    t48 = csize("tiny", 48)
    m4k = csize("mid", 4096)
    big = csize("large", 100000)
    s = {}
    s["link-high-byte"] = corrupt_input(t48, steps=mallocs(8))
    s["tag-flip"] = corrupt_input(t48, word=1, value=(FLIP, 0, 0x10), steps=mallocs(8))
    s["link-to-freed"] = corrupt_input(t48, value=(OTHER, 3), steps=mallocs(8))
    s["link-to-live"] = corrupt_input(t48, value=(OTHER, 2), steps=mallocs(8))
    s["link-off-by-16"] = corrupt_input(t48, value=(OTHER | 2 << 3, 3), steps=mallocs(8))
    s["link-next-block"] = corrupt_input(t48, value=(OTHER | 0x80, 1), steps=mallocs(8))
    s["link-zero"] = corrupt_input(t48, value=(ZERO,), steps=mallocs(8))
    s["link-self"] = corrupt_input(t48, value=(SELF,), steps=mallocs(8))
    s["link-shift"] = corrupt_input(t48, value=(SHIFT, 3), steps=mallocs(8))
    s["slab-list-flip"] = corrupt_input(t48, flush=1, steps=mallocs(12))
    s["slab-list-to-freed"] = corrupt_input(t48, flush=1, value=(OTHER, 5),
                                            steps=mallocs(12))
    s["small-cap"] = corrupt_input(t48, blocks=20, freed=0xFFFF0, cap=5,
                                   steps=mallocs(16) + [[FLUSH, 0]] + mallocs(8, 20))
    s["tag-wiped"] = corrupt_input(t48, word=1, value=(ZERO,),
                                   steps=[[AGAIN, 0]] + mallocs(10))
    s["verify-flush"] = corrupt_input(t48, value=(OTHER, 5),
                                      steps=[[VERIFY, 0], [FLUSH, 0]] + mallocs(4))
    s["mid-link"] = corrupt_input(m4k, blocks=6, freed=0x2A, steps=mallocs(6))
    s["mid-realloc"] = corrupt_input(m4k, blocks=6, freed=0x2A, value=(OTHER, 2),
                                     steps=[[7, 0] + csize("tiny", 100)] + mallocs(6))
    s["large-check"] = corrupt_input(big, blocks=4, freed=0x8, word=0,
                                     value=(FLIP, 1, 0x01), steps=[[AGAIN, 0]])
    # Large header words: 0 check, 1 len, 2 base (large.c).
    s["large-len"] = corrupt_input(big, blocks=4, freed=0x8, word=1,
                                   value=(SHIFT, 0x40), steps=[[0x83, 0]])
    s["large-base"] = corrupt_input(big, blocks=4, freed=0x8, word=2,
                                    value=(ZERO,), steps=[[AGAIN, 0], [0, 9]])
    s["large-usable"] = corrupt_input(big, blocks=4, freed=0x8, word=1,
                                      value=(FLIP, 2, 0x10), steps=[[8, 0], [AGAIN, 0]])
    return s


def write(harness, seeds):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.remove(os.path.join(d, f))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(bytes(b & 0xFF for b in data))


if __name__ == "__main__":
    write("ops", ops_seeds())
    write("corrupt", corrupt_seeds())
