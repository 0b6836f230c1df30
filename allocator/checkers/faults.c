/* Programs with one heap error each, for the checker tests: run on hakmem,
 * under memcheck or built with ASan, the tool must report the error
 * (memcheck_test.sh, asan_test.sh).
 *
 *   faults leak | use_after_free | overflow | clean
 *
 * Each mode lives in a function of its own (noinline), so a report's
 * stack names it.  Exits 0 unless the tool stops it. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps the compiler from dropping or reasoning about the heap calls. */
static void *volatile sink;

/* The second block of its size: a span's record points at its first
 * block, which memcheck then counts as reachable where the program's
 * pointer is the block start (release; tool_hooks.h). */
static __attribute__((noinline)) void leak_block(void) {
  static void *keep;
  keep = malloc(48);
  char *p = malloc(48);
  memset(p, 1, 48);
  sink = p;
  sink = NULL; /* the only pointer to it is gone: a definite leak */
}

static __attribute__((noinline)) int use_after_free(void) {
  int *p = malloc(32 * sizeof(int));
  for (int i = 0; i < 32; i++) p[i] = i;
  sink = p;
  free(p);
  return ((volatile int *)p)[5]; /* read a word of the freed block */
}

static __attribute__((noinline)) void overflow(void) {
  /* 20 bytes: release would round the block up to its class (32 bytes)
   * and keep the bytes after 20 usable; debug puts a redzone there. */
  char *p = malloc(20);
  sink = p;
  ((volatile char *)sink)[20] = 'x';
  free(p);
}

/* Every tier and call, nothing wrong: no tool may say anything. */
static __attribute__((noinline)) int clean(void) {
  static const size_t sizes[] = {1, 16, 24, 100, 1024, 1500, 20000, 65536, 70000, 300000,
                                 9u << 20};
  enum { N = sizeof sizes / sizeof sizes[0] };
  char *blocks[N];
  for (int i = 0; i < N; i++) {
    blocks[i] = malloc(sizes[i]);
    memset(blocks[i], i, sizes[i]);
  }
  int bad = 0;
  for (int i = 0; i < N; i++) {
    /* Grow (in place where the tier can) and shrink, contents kept. */
    char *q = realloc(blocks[i], sizes[i] * 2 + 8);
    if (!q || q[sizes[i] - 1] != (char)i) bad = 1;
    q[sizes[i] * 2 + 7] = 1;
    q = realloc(q, sizes[i] / 2 + 1);
    if (!q || q[sizes[i] / 2] != (char)i) bad = 1;
    blocks[i] = q;
  }
  for (int i = 0; i < N; i++) free(blocks[i]);

  int *z = calloc(1000, sizeof(int));
  for (int i = 0; i < 1000; i++) bad |= z[i];
  int *zl = calloc(100000, sizeof(int));
  for (int i = 0; i < 100000; i += 97) bad |= zl[i];
  free(z);
  free(zl);

  void *a = NULL;
  if (posix_memalign(&a, 4096, 5000) != 0) return 1;
  memset(a, 2, 5000);
  free(a);
  void *b = aligned_alloc(64, 640);
  memset(b, 3, 640);
  free(b);
  /* Every usable byte is the program's.  The pointer goes through sink
   * because _FORTIFY_SOURCE would otherwise hold memset to the 100 bytes
   * asked for and abort on the rest, which release's classes make usable. */
  sink = malloc(100);
  char *u = sink;
  size_t n = malloc_usable_size(u);
  memset(u, 4, n);
  free(u);

  /* Reuse: blocks freed above come back, and must be whole again. */
  for (int round = 0; round < 3; round++) {
    char *many[200];
    for (int i = 0; i < 200; i++) {
      many[i] = malloc((size_t)(i * 37 % 3000) + 1);
      many[i][0] = (char)i;
    }
    for (int i = 0; i < 200; i++) {
      if (many[i][0] != (char)i) bad = 1;
      free(many[i]);
    }
  }
  return bad;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (!strcmp(mode, "leak")) {
    leak_block();
    return 0;
  }
  if (!strcmp(mode, "use_after_free")) return use_after_free() == 5 ? 0 : 0;
  if (!strcmp(mode, "overflow")) {
    overflow();
    return 0;
  }
  if (!strcmp(mode, "clean")) {
    int bad = clean();
    if (bad) fprintf(stderr, "faults clean: wrong contents\n");
    return bad;
  }
  fprintf(stderr, "usage: %s leak|use_after_free|overflow|clean\n", argv[0]);
  return 2;
}
