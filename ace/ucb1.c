#include "ucb1.h"

#include <math.h>

void hkm_ace_ucb1_init(struct hkm_ace_ucb1_bandit *b, const double *values, unsigned n,
                       double c) {
  if (n < 1) n = 1;
  if (n > HKM_ACE_UCB1_MAX_ARMS) n = HKM_ACE_UCB1_MAX_ARMS;
  *b = (struct hkm_ace_ucb1_bandit){.n_arms = n, .c = c > 0 ? c : HKM_ACE_UCB1_DEFAULT_C};
  for (unsigned i = 0; i < n; i++) b->arms[i].value = values ? values[i] : (double)i;
}

double hkm_ace_ln(double x) {
  if (!(x > 0)) return -HUGE_VAL;
  if (x == HUGE_VAL) return x;
  /* x = m * 2^e with m in [1, 2); ln m = 2 atanh(s), s = (m-1)/(m+1) < 1/3. */
  int e = 0;
  while (x >= 2.0) {
    x *= 0.5;
    e++;
  }
  while (x < 1.0) {
    x *= 2.0;
    e--;
  }
  double s = (x - 1.0) / (x + 1.0), s2 = s * s, term = s, sum = 0;
  for (int k = 1; k < 80; k += 2) {
    double add = term / k;
    sum += add;
    if (add < 1e-18) break;
    term *= s2;
  }
  return 2.0 * sum + e * 0.69314718055994530942;
}

double hkm_ace_ucb1_score(const struct hkm_ace_ucb1_bandit *b, int arm, uint64_t total) {
  if (arm < 0 || (unsigned)arm >= b->n_arms) return -HUGE_VAL;
  const struct hkm_ace_ucb1_arm *a = &b->arms[arm];
  if (a->pulls == 0) return HUGE_VAL;
  double ln_n = total > 1 ? hkm_ace_ln((double)total) : 0.0;
  /* __builtin_sqrt with -fno-math-errno is one instruction, no libm. */
  return a->mean + b->c * __builtin_sqrt(ln_n / (double)a->pulls);
}

int hkm_ace_ucb1_select_range(const struct hkm_ace_ucb1_bandit *b, int first, int last) {
  int n = (int)b->n_arms;
  if (first < 0 || last < 0 || first >= n || last >= n) return -1;
  int step = first <= last ? 1 : -1;
  uint64_t total = 0;
  for (int i = first;; i += step) {
    if (b->arms[i].pulls == 0) return i; /* untried arms first */
    total += b->arms[i].pulls;
    if (i == last) break;
  }
  int best = first;
  double best_score = hkm_ace_ucb1_score(b, first, total);
  for (int i = first; i != last;) {
    i += step;
    double s = hkm_ace_ucb1_score(b, i, total);
    if (s > best_score) {
      best = i;
      best_score = s;
    }
  }
  return best;
}

int hkm_ace_ucb1_select(const struct hkm_ace_ucb1_bandit *b) {
  return hkm_ace_ucb1_select_range(b, 0, (int)b->n_arms - 1);
}

void hkm_ace_ucb1_update(struct hkm_ace_ucb1_bandit *b, int arm, double reward) {
  if (arm < 0 || (unsigned)arm >= b->n_arms) return;
  struct hkm_ace_ucb1_arm *a = &b->arms[arm];
  a->pulls++;
  b->total_pulls++;
  a->mean += (reward - a->mean) / (double)a->pulls;
}

int hkm_ace_ucb1_best(const struct hkm_ace_ucb1_bandit *b) {
  int best = -1;
  for (int i = 0; i < (int)b->n_arms; i++)
    if (b->arms[i].pulls && (best < 0 || b->arms[i].mean > b->arms[best].mean))
      best = i;
  return best;
}
