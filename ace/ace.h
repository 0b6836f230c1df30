/* ACE - the adaptive control engine (SPEC §2): an observe -> decide ->
 * apply loop on a background thread that retunes the allocator's knobs.
 *
 *   metrics.h     observe: a sample per tick from hak_stats deltas, LLC
 *                 counters, the latency probe and the thread's CPU clock
 *   controller.h  decide: rules + UCB1 bandits (ucb1.h) + safety guards,
 *                 a pure function of the samples
 *   apply.h       apply: the allocator's public setters and hak_scavenge_pages,
 *                 logged through log.h
 *   env.h         HAKMEM_ACE_* settings
 *   thread.c      the thread and its life cycle (below)
 *
 * Data flows one way: ACE calls the allocator's public API (hakmem.h); the
 * allocator never calls ACE.  ACE is linked into every allocator variant
 * and starts itself from its own constructor.
 *
 * Life cycle:
 *   - off unless HAKMEM_ACE_ENABLED=1: the constructor reads that one
 *     variable and returns.  No thread, no state, nothing on any path.
 *   - on: the constructor records the knob values of the moment as the
 *     defaults, opens the metrics and starts the thread "hakmem-ace" with
 *     every signal blocked (signals go to the application's threads).
 *   - exit: an atexit handler signals the thread and joins it, waiting at
 *     most 2 s (a tick takes a few ms at most); if the wait runs out, the
 *     thread is left to die with the process.  At info level it then logs
 *     the thread's own CPU time (its CLOCK_THREAD_CPUTIME_ID, read by the
 *     thread as it ends) against its lifetime - "Thread CPU: X ms in Y s
 *     (Z% of a core)" - and the knobs left away from their defaults; ab_ace
 *     reads both.
 *   - fork: the child runs WITHOUT ACE.  Only the forking thread exists in
 *     a child, and starting a thread from a fork handler is not safe (most
 *     children exec soon anyway).  So the child's fork handler puts every
 *     knob back to its default - the child behaves exactly as with ACE off -
 *     and forgets the thread, which its exit then does not wait for.  The
 *     parent's ACE goes on undisturbed.
 *   - a tripped safety guard restores the defaults and stops adapting for
 *     the rest of the process; the thread then only waits for exit. */
#ifndef HAKMEM_ACE_H
#define HAKMEM_ACE_H

#include "env.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Starts ACE with cfg (once per process; later calls return 0 and do
 * nothing).  Returns 0, or -1 if the thread could not be created. */
int hkm_ace_start(const struct hkm_ace_config *cfg);
/* Stops and joins the thread (bounded wait).  Nothing to do when ACE is not
 * running in this process (never started, or this is a forked child). */
void hkm_ace_stop(void);
/* 1 while ACE's thread runs in this process. */
int hkm_ace_running(void);

#ifdef __cplusplus
}
#endif

#endif
