/* Message building for diagnostics that must work anywhere: inside malloc,
 * in a signal handler, before init.  No stdio, no allocation: text goes
 * into a fixed buffer and out with one write(2). */
#ifndef HAKMEM_REPORT_H
#define HAKMEM_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

struct hak_msg {
  size_t len;
  char buf[512];
};

void hak_msg_str(struct hak_msg *m, const char *s) HAK_INTERNAL;
void hak_msg_u64(struct hak_msg *m, uint64_t v) HAK_INTERNAL;
void hak_msg_hex(struct hak_msg *m, uintptr_t v) HAK_INTERNAL;
/* Appends a newline and writes the message to fd. */
void hak_msg_send(struct hak_msg *m, int fd) HAK_INTERNAL;

#endif
