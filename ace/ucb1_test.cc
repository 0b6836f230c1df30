// UCB1 over discrete candidates (ucb1.h): untried arms first, the bonus
// formula, the running mean, ranges, and convergence on a synthetic bandit
// whose arm means are known.

#include "ucb1.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace {

constexpr double kValues[] = {4, 8, 16, 32};

TEST(Ucb1, InitDefaultsTheBonusToSqrt2AndClampsArmCount) {
  hkm_ace_ucb1_bandit b;
  hkm_ace_ucb1_init(&b, kValues, 4, 0);
  EXPECT_DOUBLE_EQ(b.c, std::sqrt(2.0));
  EXPECT_EQ(b.n_arms, 4u);
  EXPECT_EQ(b.total_pulls, 0u);
  EXPECT_DOUBLE_EQ(b.arms[3].value, 32);

  std::vector<double> many(20, 1.0);
  hkm_ace_ucb1_init(&b, many.data(), 20, 0.5);
  EXPECT_EQ(b.n_arms, unsigned{HKM_ACE_UCB1_MAX_ARMS});
  EXPECT_DOUBLE_EQ(b.c, 0.5);
}

TEST(Ucb1, UntriedArmsComeFirstInOrder) {
  hkm_ace_ucb1_bandit b;
  hkm_ace_ucb1_init(&b, kValues, 4, 0);
  // Even an arm with a perfect reward does not stop the others being tried.
  for (int expect = 0; expect < 4; ++expect) {
    int arm = hkm_ace_ucb1_select(&b);
    EXPECT_EQ(arm, expect);
    hkm_ace_ucb1_update(&b, arm, arm == 0 ? 1.0 : 0.0);
  }
  // All tried: arm 0 (mean 1) now has the best score.
  EXPECT_EQ(hkm_ace_ucb1_select(&b), 0);
}

TEST(Ucb1, RangeWalksFromFirstTowardsLast) {
  hkm_ace_ucb1_bandit b;
  hkm_ace_ucb1_init(&b, kValues, 4, 0);
  EXPECT_EQ(hkm_ace_ucb1_select_range(&b, 2, 0), 2);  // nearest untried first
  hkm_ace_ucb1_update(&b, 2, 0.1);
  EXPECT_EQ(hkm_ace_ucb1_select_range(&b, 2, 0), 1);
  hkm_ace_ucb1_update(&b, 1, 0.9);
  EXPECT_EQ(hkm_ace_ucb1_select_range(&b, 2, 0), 0);
  hkm_ace_ucb1_update(&b, 0, 0.2);
  // All of 0..2 tried; 3 is outside the range and never chosen.
  EXPECT_EQ(hkm_ace_ucb1_select_range(&b, 2, 0), 1);
  EXPECT_EQ(hkm_ace_ucb1_select_range(&b, 1, 1), 1);
  EXPECT_EQ(hkm_ace_ucb1_select_range(&b, 3, 3), 3);
  EXPECT_EQ(hkm_ace_ucb1_select_range(&b, -1, 2), -1);
  EXPECT_EQ(hkm_ace_ucb1_select_range(&b, 0, 4), -1);
}

TEST(Ucb1, ScoreIsMeanPlusBonus) {
  hkm_ace_ucb1_bandit b;
  hkm_ace_ucb1_init(&b, kValues, 4, 0);
  EXPECT_TRUE(std::isinf(hkm_ace_ucb1_score(&b, 0, 10)));  // untried
  hkm_ace_ucb1_update(&b, 0, 0.25);
  hkm_ace_ucb1_update(&b, 0, 0.75);
  hkm_ace_ucb1_update(&b, 1, 0.4);
  // arm 0: mean 0.5, n = 2; N = 3.
  EXPECT_NEAR(hkm_ace_ucb1_score(&b, 0, 3), 0.5 + std::sqrt(2.0) * std::sqrt(std::log(3.0) / 2),
              1e-12);
  EXPECT_NEAR(hkm_ace_ucb1_score(&b, 1, 3), 0.4 + std::sqrt(2.0) * std::sqrt(std::log(3.0) / 1),
              1e-12);
  // The bonus scales with c.
  hkm_ace_ucb1_bandit c;
  hkm_ace_ucb1_init(&c, kValues, 4, 0.1);
  hkm_ace_ucb1_update(&c, 2, 1.0);
  EXPECT_NEAR(hkm_ace_ucb1_score(&c, 2, 100), 1.0 + 0.1 * std::sqrt(std::log(100.0)), 1e-12);
}

TEST(Ucb1, SelectPicksTheHighestScore) {
  hkm_ace_ucb1_bandit b;
  hkm_ace_ucb1_init(&b, kValues, 3, 0);
  // arm 0: many pulls, good mean; arm 1: one pull, lower mean, big bonus.
  for (int i = 0; i < 50; ++i) hkm_ace_ucb1_update(&b, 0, 0.6);
  hkm_ace_ucb1_update(&b, 1, 0.3);
  for (int i = 0; i < 50; ++i) hkm_ace_ucb1_update(&b, 2, 0.1);
  uint64_t n = b.total_pulls;
  double s0 = hkm_ace_ucb1_score(&b, 0, n), s1 = hkm_ace_ucb1_score(&b, 1, n);
  ASSERT_GT(s1, s0);
  EXPECT_EQ(hkm_ace_ucb1_select(&b), 1);
}

TEST(Ucb1, RunningMean) {
  hkm_ace_ucb1_bandit b;
  hkm_ace_ucb1_init(&b, kValues, 4, 0);
  const double rewards[] = {1, 0, 1, 1, 0.5};
  double sum = 0;
  for (double r : rewards) {
    hkm_ace_ucb1_update(&b, 3, r);
    sum += r;
  }
  EXPECT_EQ(b.arms[3].pulls, 5u);
  EXPECT_EQ(b.total_pulls, 5u);
  EXPECT_NEAR(b.arms[3].mean, sum / 5, 1e-15);
  // Bad arms are ignored.
  hkm_ace_ucb1_update(&b, -1, 1);
  hkm_ace_ucb1_update(&b, 4, 1);
  EXPECT_EQ(b.total_pulls, 5u);
  EXPECT_EQ(hkm_ace_ucb1_best(&b), 3);
}

TEST(Ucb1, BestIsMinusOneUntilPulled) {
  hkm_ace_ucb1_bandit b;
  hkm_ace_ucb1_init(&b, kValues, 4, 0);
  EXPECT_EQ(hkm_ace_ucb1_best(&b), -1);
}

// A Bernoulli bandit with known means: UCB1 must find the best arm and
// spend most pulls on it.  Seeded: the run is the same every time.
TEST(Ucb1, ConvergesToTheBestArm) {
  const std::vector<double> means = {0.2, 0.5, 0.8, 0.45, 0.3, 0.7};
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  hkm_ace_ucb1_bandit b;
  hkm_ace_ucb1_init(&b, nullptr, static_cast<unsigned>(means.size()), 0);
  const int rounds = 5000;
  std::vector<int> pulls(means.size());
  for (int t = 0; t < rounds; ++t) {
    int arm = hkm_ace_ucb1_select(&b);
    ASSERT_GE(arm, 0);
    ++pulls[arm];
    hkm_ace_ucb1_update(&b, arm, u(rng) < means[arm] ? 1.0 : 0.0);
  }
  EXPECT_EQ(hkm_ace_ucb1_best(&b), 2);
  EXPECT_GT(pulls[2], rounds * 3 / 4) << "pulls of the best arm";
  for (size_t i = 0; i < means.size(); ++i) EXPECT_GT(pulls[i], 0) << "arm " << i;
  EXPECT_NEAR(b.arms[2].mean, 0.8, 0.03);
}

TEST(Ucb1, SameRewardsSameChoices) {
  hkm_ace_ucb1_bandit a, b;
  hkm_ace_ucb1_init(&a, kValues, 4, 0);
  hkm_ace_ucb1_init(&b, kValues, 4, 0);
  for (int t = 0; t < 200; ++t) {
    int x = hkm_ace_ucb1_select(&a), y = hkm_ace_ucb1_select(&b);
    ASSERT_EQ(x, y);
    double r = ((t * 7919) % 13) / 13.0;
    hkm_ace_ucb1_update(&a, x, r);
    hkm_ace_ucb1_update(&b, y, r);
  }
}

TEST(Ucb1, OwnLogarithmMatchesLibm) {
  for (double x : {1e-300, 1e-9, 0.1, 0.5, 0.999, 1.0, 1.5, 2.0, 2.718281828459045, 3.0, 10.0,
                   1000.0, 123456789.0, 1e300}) {
    EXPECT_NEAR(hkm_ace_ln(x), std::log(x), 1e-13 * std::max(1.0, std::fabs(std::log(x))))
        << "x = " << x;
  }
  EXPECT_TRUE(std::isinf(hkm_ace_ln(0.0)));
  EXPECT_LT(hkm_ace_ln(0.0), 0);
}

}  // namespace
