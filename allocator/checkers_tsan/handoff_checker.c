/* A correct program that hands hakmem's blocks between threads; under
 * ThreadSanitizer it must run without a single report.  With hakmem as the
 * allocator the tool cannot see that a block freed by one thread and
 * handed out again to another is a new object: only what hakmem does in
 * between (its atomics, locks and allocator/tsan_sync.h) orders the old
 * holder's accesses before the new holder's.  A missing hand-off there
 * shows up here as a false "data race".
 *
 *   handoff_checker mutex|oneway
 *
 * Producers allocate blocks in every tier (tiny to a 9 MiB mapping of its
 * own), fill them and pass them on; consumers check the bytes, grow or
 * shrink some with realloc (in place, copied, or moved by mremap), write
 * them and free them - for small blocks a remote free into the producer's
 * span, which the producer drains and reuses.  Consumers are short-lived,
 * so their spans are abandoned and adopted by later threads.
 *
 * mutex:  a mutex and condition variable carry the blocks.
 * oneway: a channel the producer writes and never reads from: nothing the
 *         program does orders a consumer's accesses before the producer's
 *         reuse of the same memory, so hakmem alone must.
 *
 * Prints the blocks handed over and how many allocations reused an address
 * handed over before (it must be most of them); exits 1 on wrong bytes. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRODUCERS 2
#define WAVES 4
#define PER_WAVE 600 /* blocks a producer hands over per consumer wave */
#define TOTAL (WAVES * PER_WAVE)

static const size_t sizes[] = {24, 48, 200, 1000, 3000, 20000, 60000, 100000, 300000};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define HUGE_EVERY 400 /* one block in this many is beyond the arenas */
#define HUGE_SIZE ((size_t)9 << 20)

struct item {
  unsigned char *p;
  size_t n;
  unsigned char fill;
};

static int oneway;
static _Atomic int bad;

/* The mutex channel, one per producer. */
struct mutex_chan {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct item q[TOTAL];
  size_t head, tail;
};

/* The one-way channel: the producer writes slots, then publishes with a
 * release store; the consumer reads with acquire.  The producer reads
 * only the consumer's progress, relaxed - which orders nothing - to stay
 * at most WINDOW blocks ahead, so that freed memory comes back to it. */
#define WINDOW 16
struct oneway_chan {
  struct item q[TOTAL];
  _Atomic size_t published;
  _Atomic size_t taken; /* written by the consumer only */
};

struct producer {
  struct mutex_chan m;
  struct oneway_chan o;
  /* The producer's own record of addresses handed over (no other thread
   * reads it): reuse is counted without synchronising with consumers. */
  uintptr_t seen[4096];
  unsigned long reused, handed;
};

static struct producer producers[PRODUCERS];

static int seen_before(struct producer *pr, const void *p) {
  uintptr_t a = (uintptr_t)p, h = (a >> 4) * 0x9e3779b97f4a7c15ull >> 52;
  for (uintptr_t i = h;; i = (i + 1) & 4095) {
    if (pr->seen[i] == a) return 1;
    if (!pr->seen[i]) {
      pr->seen[i] = a;
      return 0;
    }
    if (((i + 1) & 4095) == h) return 0; /* full: stop recording */
  }
}

static void send(struct producer *pr, struct item it) {
  if (oneway) {
    size_t at = atomic_load_explicit(&pr->o.published, memory_order_relaxed);
    while (at - atomic_load_explicit(&pr->o.taken, memory_order_relaxed) >= WINDOW)
      sched_yield();
    pr->o.q[at] = it;
    atomic_store_explicit(&pr->o.published, at + 1, memory_order_release);
    return;
  }
  pthread_mutex_lock(&pr->m.mu);
  while (pr->m.tail - pr->m.head >= WINDOW) pthread_cond_wait(&pr->m.cv, &pr->m.mu);
  pr->m.q[pr->m.tail++] = it;
  pthread_cond_broadcast(&pr->m.cv);
  pthread_mutex_unlock(&pr->m.mu);
}

static struct item receive(struct producer *pr) {
  struct item it;
  if (oneway) {
    size_t at = atomic_load_explicit(&pr->o.taken, memory_order_relaxed);
    while (atomic_load_explicit(&pr->o.published, memory_order_acquire) == at) sched_yield();
    it = pr->o.q[at];
    atomic_store_explicit(&pr->o.taken, at + 1, memory_order_relaxed);
    return it;
  }
  pthread_mutex_lock(&pr->m.mu);
  while (pr->m.head == pr->m.tail) pthread_cond_wait(&pr->m.cv, &pr->m.mu);
  it = pr->m.q[pr->m.head++];
  pthread_cond_broadcast(&pr->m.cv);
  pthread_mutex_unlock(&pr->m.mu);
  return it;
}

static void *produce(void *arg) {
  struct producer *pr = arg;
  for (unsigned i = 0; i < TOTAL; i++) {
    size_t n = i % HUGE_EVERY == HUGE_EVERY - 1 ? HUGE_SIZE : sizes[(i * 7 + (unsigned)(pr - producers)) % NSIZES];
    unsigned char *p = malloc(n);
    if (!p) {
      atomic_fetch_add(&bad, 1);
      continue;
    }
    if (seen_before(pr, p)) pr->reused++;
    pr->handed++;
    unsigned char fill = (unsigned char)(i * 31 + 1);
    memset(p, fill, n);
    send(pr, (struct item){p, n, fill});
  }
  return NULL;
}

static int intact(const unsigned char *p, size_t n, unsigned char fill) {
  for (size_t i = 0; i < n; i += 61)
    if (p[i] != fill) return 0;
  return p[n - 1] == fill;
}

/* One wave's consumer of one producer's blocks. */
static void *consume(void *arg) {
  struct producer *pr = arg;
  for (unsigned i = 0; i < PER_WAVE; i++) {
    struct item it = receive(pr);
    if (!intact(it.p, it.n, it.fill)) atomic_fetch_add(&bad, 1);
    unsigned char *p = it.p;
    size_t n = it.n;
    if (i % 5 == 0) {
      /* Grow (large blocks: in place, copied or mremap'd) or shrink. */
      size_t m = i % 10 == 0 ? n * 3 / 2 + 4096 : n / 3 + 1;
      unsigned char *q = realloc(p, m);
      if (!q) {
        atomic_fetch_add(&bad, 1);
      } else {
        if (!intact(q, m < n ? m : n, it.fill)) atomic_fetch_add(&bad, 1);
        p = q;
        n = m;
      }
    }
    memset(p, 0xEE, n);
    free(p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (!strcmp(mode, "oneway")) oneway = 1;
  else if (strcmp(mode, "mutex")) {
    fprintf(stderr, "usage: %s mutex|oneway\n", argv[0]);
    return 2;
  }
  pthread_t prod[PRODUCERS];
  for (int i = 0; i < PRODUCERS; i++) {
    pthread_mutex_init(&producers[i].m.mu, NULL);
    pthread_cond_init(&producers[i].m.cv, NULL);
    pthread_create(&prod[i], NULL, produce, &producers[i]);
  }
  for (int w = 0; w < WAVES; w++) {
    pthread_t cons[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) pthread_create(&cons[i], NULL, consume, &producers[i]);
    for (int i = 0; i < PRODUCERS; i++) pthread_join(cons[i], NULL);
  }
  unsigned long handed = 0, reused = 0;
  for (int i = 0; i < PRODUCERS; i++) {
    pthread_join(prod[i], NULL);
    handed += producers[i].handed;
    reused += producers[i].reused;
  }
  printf("handoff_checker %s: handed=%lu reused=%lu bad=%d\n", mode, handed, reused,
         atomic_load(&bad));
  return atomic_load(&bad) ? 1 : 0;
}
