/* ACE's log: lines "[ACE] ..." on stderr, filtered by HAKMEM_ACE_LOG_LEVEL
 * (0 off, 1 info, 2 debug).  A line is formatted into a stack buffer and
 * written with one write(2): no stdio lock, no allocation, so a fork in
 * another thread never leaves the child with a held lock. */
#ifndef HAKMEM_ACE_LOG_H
#define HAKMEM_ACE_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum hkm_ace_log_level {
  HKM_ACE_LOG_OFF = 0,
  HKM_ACE_LOG_INFO = 1,
  HKM_ACE_LOG_DEBUG = 2,
};

/* Current level and destination (stderr by default); tests redirect it. */
void hkm_ace_log_set(int level, int fd);
int hkm_ace_log_level(void);

/* Writes "[ACE] " + the formatted text + "\n" when level <= the current
 * level.  Lines longer than 480 bytes are cut. */
void hkm_ace_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif
