#include "report.h"

#include <unistd.h>

void hak_msg_str(struct hak_msg *m, const char *s) {
  while (*s && m->len < sizeof m->buf - 1) m->buf[m->len++] = *s++;
}

void hak_msg_u64(struct hak_msg *m, uint64_t v) {
  char digits[21];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n > 0 && m->len < sizeof m->buf - 1) m->buf[m->len++] = digits[--n];
}

void hak_msg_hex(struct hak_msg *m, uintptr_t v) {
  char digits[19];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  digits[n++] = 'x';
  digits[n++] = '0';
  while (n > 0 && m->len < sizeof m->buf - 1) m->buf[m->len++] = digits[--n];
}

void hak_msg_send(struct hak_msg *m, int fd) {
  m->buf[m->len++] = '\n';
  size_t done = 0;
  while (done < m->len) {
    ssize_t w = write(fd, m->buf + done, m->len - done);
    if (w <= 0) break;
    done += (size_t)w;
  }
  m->len = 0;
}
