#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "decimal.h"
#include "report.h"

struct hak_config hak_config = {
    .tls_cap = 0,
    .tls_cap_scale = 100,
    .bundle_width = 0,
    .release_pages = 0,
    .drain_threshold = 64,
    .fault_action = HAK_FAULT_ABORT,
    .crash_handler = 1,
    .large_cache_bytes = 32ull << 20,
    .empty_retain_bytes = 32ull << 20,
    .redzone = 1,
};

/* hakmem may start before libc has set environ: a program's first malloc
 * can come from its .preinit_array (ASan's runtime starts there), and
 * getenv then finds nothing, so every setting would be silently ignored.
 * The dynamic linker has recorded the initial stack by then, and the
 * kernel put the environment on it: argc, argv[argc], NULL, envp[]. */
extern void *__libc_stack_end;

static const char *setting(const char *name) {
  if (environ || !__libc_stack_end) return getenv(name);
  char **argv = (char **)__libc_stack_end + 1;
  size_t len = strlen(name);
  for (char **e = argv + (uintptr_t)argv[-1] + 1; *e; e++)
    if (!strncmp(*e, name, len) && (*e)[len] == '=') return *e + len + 1;
  return NULL;
}

static void warn_bad(const char *name, const char *value, const char *expected) {
  struct hak_msg m = {0};
  hak_msg_str(&m, "hakmem: ignoring ");
  hak_msg_str(&m, name);
  hak_msg_str(&m, "=");
  hak_msg_str(&m, value);
  hak_msg_str(&m, " (expected ");
  hak_msg_str(&m, expected);
  hak_msg_str(&m, "); using the default");
  hak_msg_send(&m, 2);
}

static const struct numeric_setting {
  const char *name;
  uint64_t lo, hi;
  const char *expected;
  unsigned shift; /* the value is given in units of 2^shift bytes */
  uint64_t *target;
} numeric_settings[] = {
    {"HAKMEM_TLS_CAP", 1, 4096, "1..4096", 0, &hak_config.tls_cap},
    {"HAKMEM_TLS_CAP_SCALE", 1, 1600, "1..1600", 0, &hak_config.tls_cap_scale},
    {"HAKMEM_BUNDLE_WIDTH", 0, 4096, "0..4096", 0, &hak_config.bundle_width},
    {"HAKMEM_RELEASE_PAGES", 0, HAK_RELEASE_PAGES_MAX, "0..128", 0, &hak_config.release_pages},
    {"HAKMEM_DRAIN_THRESHOLD", 1, 65536, "1..65536", 0, &hak_config.drain_threshold},
    {"HAKMEM_CRASH_HANDLER", 0, 1, "0 or 1", 0, &hak_config.crash_handler},
    {"HAKMEM_LARGE_CACHE_MB", 0, 1 << 20, "0..1048576", 20, &hak_config.large_cache_bytes},
    {"HAKMEM_EMPTY_RETAIN_MB", 0, 1 << 20, "0..1048576", 20, &hak_config.empty_retain_bytes},
    {"HAKMEM_REDZONE", 0, 1, "0 or 1", 0, &hak_config.redzone},
};

int hak_config_load(void) {
  int bad = 0;
  for (size_t i = 0; i < sizeof numeric_settings / sizeof numeric_settings[0]; i++) {
    const struct numeric_setting *s = &numeric_settings[i];
    const char *v = setting(s->name);
    uint64_t x;
    if (!v) continue;
    if (hak_parse_decimal(v, s->lo, s->hi, &x)) {
      *s->target = x << s->shift;
    } else {
      warn_bad(s->name, v, s->expected);
      bad++;
    }
  }
  const char *action = setting("HAKMEM_FAULT_ACTION");
  if (action) {
    if (!strcmp(action, "abort")) hak_config.fault_action = HAK_FAULT_ABORT;
    else if (!strcmp(action, "report")) hak_config.fault_action = HAK_FAULT_REPORT;
    else {
      warn_bad("HAKMEM_FAULT_ACTION", action, "abort or report");
      bad++;
    }
  }
  return bad;
}
