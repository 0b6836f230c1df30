/* The crash handler (SPEC §1, release and debug): on SIGSEGV, SIGBUS or
 * SIGABRT it prints a short report, then lets the default action happen.
 * It is installed at start-up only over the default action - a signal
 * inherited as ignored stays ignored - and a handler the program installs
 * later simply replaces it. */
#include <signal.h>
#include <string.h>

#include "config.h"
#include "init.h"
#include "integrity.h"
#include "report.h"

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGABRT};
#define NSIG_HANDLED (sizeof crash_signals / sizeof crash_signals[0])

static const char *signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    default: return "SIGABRT";
  }
}

static void on_crash(int sig, siginfo_t *info, void *context) {
  (void)context;
  struct hak_msg m = {0};
  hak_msg_str(&m, "hakmem: fatal signal ");
  hak_msg_str(&m, signal_name(sig));
  if (sig != SIGABRT && info->si_code > 0) { /* a fault, not a sent signal */
    hak_msg_str(&m, " at address ");
    hak_msg_hex(&m, (uintptr_t)info->si_addr);
  }
  hak_msg_str(&m, "; hakmem ");
  hak_msg_str(&m, hak_variant());
  hak_msg_str(&m, ", integrity events: ");
  hak_msg_u64(&m, hak_integrity_events());
  hak_msg_send(&m, 2);

  /* Restore the default and let the signal happen again: a fault
   * re-executes its instruction, a sent signal is raised anew (blocked
   * until this handler returns). */
  signal(sig, SIG_DFL);
  if (sig == SIGABRT || info->si_code <= 0) raise(sig);
}

/* With ASan (tool_hooks.h) hakmem may start inside ASan's own start-up,
 * before its sigaction interceptor works: then installing waits for
 * hakmem's constructor (hak_crash_handler_resume). */
static int deferred;

void hak_crash_handler_install(void) {
  if (!hak_config.crash_handler) return;
#if HAK_TOOL_ASAN
  if (!hak_asan_ready) {
    deferred = 1;
    return;
  }
#endif
  for (size_t i = 0; i < NSIG_HANDLED; i++) {
    struct sigaction current;
    if (sigaction(crash_signals[i], NULL, &current) != 0) continue;
    if (current.sa_handler != SIG_DFL) continue;
    struct sigaction ours;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = on_crash;
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&ours.sa_mask);
    sigaction(crash_signals[i], &ours, NULL);
  }
}

void hak_crash_handler_resume(void) {
  if (!deferred) return;
  deferred = 0;
  hak_crash_handler_install();
}

const char *hak_variant(void) { return HAKMEM_BUILD_RELEASE ? "release" : "debug"; }
