/* A program with a real data race on memory hakmem handed out, to show
 * that ThreadSanitizer still sees such races with hakmem as the allocator:
 * hakmem's hand-off annotations (allocator/tsan_sync.h) must order only
 * what hakmem itself orders.  Each scenario races once; run_checkers.sh
 * expects a "data race" report naming this file for every one.
 *
 *   race_checker tiny|mid|large|after_handoff|recycled
 *
 * tiny, mid, large: two threads write the same fresh block of that tier.
 * after_handoff: a thread hands a block to another through a mutex, then
 *   writes it again, unsynchronised, while the new holder writes it.
 * recycled: the racing block is one the other thread freed before (the
 *   allocator's remote queue, then the owner's reuse), and both threads
 *   allocate and free around the racing writes. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *shared;
static size_t shared_len;
static pthread_barrier_t start;

/* Keeps the compiler from dropping or merging the racing stores. */
static void write_block(char *p, size_t n, char v) {
  for (size_t i = 0; i < n; i += 64) ((volatile char *)p)[i] = v;
}

static void churn(int rounds) {
  for (int r = 0; r < rounds; r++) {
    void *p[32];
    for (int i = 0; i < 32; i++) p[i] = malloc(16 + (size_t)(i * 97 + r) % 3000);
    for (int i = 0; i < 32; i++) free(p[i]);
  }
}

/* With arg, the writer allocates and frees around its racing write.  The
 * churn before the barrier gives it its spans; the churn after it is then
 * served from its own caches, which hakmem hands over to no one.  Any
 * hand-off between the two writers there would be a real synchronisation
 * (a span released by one and acquired by the other) and would hide the
 * race from the tool rightly - a test that could pass or fail by timing. */
static void *writer(void *arg) {
  if (arg) churn(50);
  pthread_barrier_wait(&start);
  if (arg) churn(2);
  write_block(shared, shared_len, 'w');
  if (arg) churn(2);
  return NULL;
}

/* Two threads, one block, no synchronisation between their writes (the
 * barrier orders both after the block's allocation, not against each
 * other's writes). */
static int race_on_fresh(size_t n) {
  shared_len = n;
  shared = malloc(n);
  if (!shared) return 1;
  pthread_t a, b;
  pthread_barrier_init(&start, NULL, 2);
  pthread_create(&a, NULL, writer, NULL);
  pthread_create(&b, NULL, writer, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  pthread_barrier_destroy(&start);
  free(shared);
  return 0;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static char *mailbox;

static void *receiver(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  while (!mailbox) pthread_cond_wait(&cv, &mu);
  char *p = mailbox;
  pthread_mutex_unlock(&mu);
  write_block(p, 4096, 'r');
  pthread_barrier_wait(&start);
  free(p);
  return NULL;
}

/* The hand-off itself is synchronised; the sender's write after it is
 * not. */
static int race_after_handoff(void) {
  pthread_t t;
  pthread_barrier_init(&start, NULL, 2);
  pthread_create(&t, NULL, receiver, NULL);
  char *p = malloc(4096);
  if (!p) return 1;
  write_block(p, 4096, 's');
  pthread_mutex_lock(&mu);
  mailbox = p;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
  write_block(p, 4096, 'S'); /* the bug: p is no longer ours */
  pthread_barrier_wait(&start);
  pthread_join(t, NULL);
  return 0;
}

static void *free_all(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < 256; i++) free(blocks[i]);
  return NULL;
}

/* The racing block comes from memory another thread freed remotely. */
static int race_on_recycled(void) {
  static void *blocks[256];
  for (int i = 0; i < 256; i++) blocks[i] = malloc(48);
  pthread_t t;
  pthread_create(&t, NULL, free_all, blocks);
  pthread_join(t, NULL);
  churn(20); /* drains the remote queue: the blocks come back */
  shared_len = 48;
  shared = malloc(48);
  if (!shared) return 1;
  pthread_t a, b;
  pthread_barrier_init(&start, NULL, 2);
  pthread_create(&a, NULL, writer, (void *)1);
  pthread_create(&b, NULL, writer, (void *)1);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  pthread_barrier_destroy(&start);
  free(shared);
  return 0;
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  int err;
  if (!strcmp(what, "tiny")) err = race_on_fresh(32);
  else if (!strcmp(what, "mid")) err = race_on_fresh(20000);
  else if (!strcmp(what, "large")) err = race_on_fresh(300000);
  else if (!strcmp(what, "after_handoff")) err = race_after_handoff();
  else if (!strcmp(what, "recycled")) err = race_on_recycled();
  else {
    fprintf(stderr, "usage: %s tiny|mid|large|after_handoff|recycled\n", argv[0]);
    return 2;
  }
  if (err) fprintf(stderr, "race_checker: out of memory\n");
  return err;
}
