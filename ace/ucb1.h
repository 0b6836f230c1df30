/* UCB1 over a small set of discrete candidates (SPEC §2 "Learning").
 *
 * A bandit holds one arm per candidate value of a knob (for example the
 * drain thresholds 32, 64, ..., 1024).  Selecting returns the arm to try:
 * an arm never pulled comes first (in the order the caller asks for);
 * otherwise the arm with the highest score
 *
 *     mean_i + c * sqrt(ln N / n_i)
 *
 * where mean_i is the arm's average reward, n_i its pulls, N the pulls of
 * all arms considered and c the exploration bonus (sqrt(2) by default, the
 * classic UCB1 constant for rewards in [0, 1]).  Updating adds one reward
 * to the arm's running mean.
 *
 * Everything is in the struct (at most HKM_ACE_UCB1_MAX_ARMS arms): no
 * allocation, no clock, no randomness - the same rewards give the same
 * choices.  A caller may restrict a selection to a contiguous range of
 * arms (e.g. only thresholds below the current one); N is then the pulls
 * of that range. */
#ifndef HAKMEM_ACE_UCB1_H
#define HAKMEM_ACE_UCB1_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HKM_ACE_UCB1_MAX_ARMS 8
#define HKM_ACE_UCB1_DEFAULT_C 1.4142135623730951 /* sqrt(2) */

struct hkm_ace_ucb1_arm {
  double value;   /* the candidate this arm stands for (knob value) */
  double mean;    /* average reward so far (0 until pulled) */
  uint64_t pulls; /* rewards received */
};

struct hkm_ace_ucb1_bandit {
  struct hkm_ace_ucb1_arm arms[HKM_ACE_UCB1_MAX_ARMS];
  unsigned n_arms;
  uint64_t total_pulls; /* sum of the arms' pulls */
  double c;             /* exploration bonus */
};

/* Arms for values[0..n) (n clamped to 1..HKM_ACE_UCB1_MAX_ARMS), all
 * untried; c <= 0 selects HKM_ACE_UCB1_DEFAULT_C. */
void hkm_ace_ucb1_init(struct hkm_ace_ucb1_bandit *b, const double *values, unsigned n,
                       double c);

/* The arm to pull among all arms: the first untried one, else the best
 * score (ties to the lower index). */
int hkm_ace_ucb1_select(const struct hkm_ace_ucb1_bandit *b);

/* The same among arms first..last inclusive, visited from first towards
 * last (first > last walks downwards): the first untried arm met wins,
 * score ties go to the arm met first.  -1 if the range is empty or out of
 * bounds. */
int hkm_ace_ucb1_select_range(const struct hkm_ace_ucb1_bandit *b, int first, int last);

/* Score of an arm given N total pulls: mean + c*sqrt(ln N / n); +inf for
 * an untried arm. */
double hkm_ace_ucb1_score(const struct hkm_ace_ucb1_bandit *b, int arm, uint64_t total);

/* Records one reward for arm (ignored for a bad index): running mean
 * mean += (reward - mean) / pulls. */
void hkm_ace_ucb1_update(struct hkm_ace_ucb1_bandit *b, int arm, double reward);

/* Index of the arm with the best mean among pulled arms, -1 if none. */
int hkm_ace_ucb1_best(const struct hkm_ace_ucb1_bandit *b);

/* Natural logarithm of x > 0, without libm (the allocator's shared object
 * links libc only).  Accurate to a few ulps. */
double hkm_ace_ln(double x);

#ifdef __cplusplus
}
#endif

#endif
