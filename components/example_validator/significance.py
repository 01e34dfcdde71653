"""Is a drift/skew distance beyond what two samples of one distribution give at these sizes?

TFDV's comparators report a distance (Jensen-Shannon divergence for numeric features, L-infinity
for categorical ones) and flag it when it is above a fixed threshold. For numeric features that
distance carries noise that the threshold does not know about: each split's equal-width histogram
spans that split's own min..max, and TFDV re-buckets one histogram onto the other's boundaries
assuming values are spread evenly inside a bucket. The extremes of a sample therefore move the
distance. Measured on clean quickstart data (20,000 rows, seed 1): the cumulative distributions of
train and eval ``loan_amount`` differ by at most 1.2 % of the rows (exact two-sample KS 0.012,
p = 0.86), yet their maxima are 1.22 M and 0.70 M, so the eval buckets are 0.6 times as wide and
TFDV's JSD is 0.13, above the 0.1 threshold. A zero-inflated count feature puts most of its mass
in one bucket whose width follows the split's max: random splits of 4,000 rows (85 % zeros) gave
JSDs of 0.07-0.18 over six seeds, and a real public data set 0.26-0.47.

A "noise floor" made by resampling from the train histogram does not reproduce this, because the
noise comes from the sample maxima, which a 10-bucket histogram does not describe: for that seed,
40 pairs of samples of the two sizes drawn from train's equal-width histogram gave TFDV JSDs of at
most 0.055 (0.006 from its quantile histogram), so a floor made that way would still flag the
0.13 of two samples of one distribution. Instead
each comparison gets a two-sample test whose false-alarm rate is known at the sample sizes
involved, computed from the statistics alone (no data is read again, no randomness):

* numeric: a Kolmogorov-Smirnov test. TFDV's statistics give each split's cumulative
  distribution at about 20 points (the quantile histogram's boundaries, the equal-width
  histogram's edges, and exactly at 0 from ``num_zeros`` when no value is negative), each known
  to within the quantile sketch's error. From these the largest gap between the two cumulative
  distributions is bounded from below; the p-value of that lower bound (Kolmogorov's asymptotic
  distribution) is at least the p-value of the exact KS statistic, so the test never rejects more
  often than the KS test does. With ties (integer data) the KS test is conservative as well. The
  price is power: the bound can be lower than the exact gap by the share between two known points
  (up to a decile).
* categorical: a chi-square test of homogeneity on the value counts (values with fewer than 5
  expected occurrences in either split pooled into one cell).

The p-values of every comparison of a run (all features, eval and test) are corrected together
with Holm's method, so ``false_alarm_rate`` bounds the chance that a run on same-distribution data
flags anything at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

#: Rank error of TFDV's quantile sketch (``StatsOptions.epsilon``, 0.01 by default, which
#: StatisticsGen uses): each cumulative share read from the statistics is within this of the truth.
QUANTILE_ERROR = 0.01
#: Categorical values expected fewer times than this (in either split) share one cell.
MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class SampleTest:
    """A two-sample test between train and another split for one feature."""

    name: str  # "KS" or "chi-square"
    statistic: float  # KS: lower bound of the largest CDF gap; chi-square: the statistic
    p_value: float
    train_count: float
    other_count: float


def two_sample_test(train_feature, other_feature) -> tuple[Optional[SampleTest], str]:
    """The test of one feature's statistics (``FeatureNameStatistics`` of train and the other split).

    Returns:
        The test, or None and why it could not be made (the threshold alone then decides).
    """
    kind = train_feature.WhichOneof("stats")
    if kind != other_feature.WhichOneof("stats"):
        return None, "the splits' statistics are of different types"
    if kind == "num_stats":
        return _ks_test(train_feature.num_stats, other_feature.num_stats)
    if kind == "string_stats":
        return _chi_square_test(train_feature.string_stats, other_feature.string_stats)
    return None, f"no test for {kind or 'empty'} statistics"


def holm_adjusted(p_values: list[float]) -> list[float]:
    """Holm's adjusted p-values: rejecting those at most ``rate`` keeps the chance of any false
    rejection among all of them at most ``rate`` (whatever their dependence)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


# -- numeric: Kolmogorov-Smirnov from cumulative shares in the statistics -------------------------

@dataclass(frozen=True)
class _Point:
    """A cumulative share ``share`` known at ``x`` (within ``error``): F(y) >= share - error for
    y >= x, and F(y) <= share + error for y < x (also for y == x when ``through`` is set)."""

    x: float
    share: float
    error: float
    through: bool = False


def _cumulative_points(stats) -> tuple[list[_Point], float]:
    """Points of one split's cumulative distribution of finite values, and how many values it has."""
    points: list[_Point] = []
    total = 0.0
    for histogram in stats.histograms:
        count = float(round(sum(b.sample_count for b in histogram.buckets)))  # whole values, summed in floats
        if not histogram.buckets or count <= 0:
            continue
        total = max(total, count)
        points.append(_Point(histogram.buckets[0].low_value, 0.0, QUANTILE_ERROR))
        running = 0.0
        for bucket in histogram.buckets:
            running += bucket.sample_count
            points.append(_Point(bucket.high_value, min(running / count, 1.0), QUANTILE_ERROR))
    if total <= 0:
        return [], 0.0
    # min and max are exact: nothing below min, everything at or below max
    points += [_Point(stats.min, 0.0, 0.0), _Point(stats.max, 1.0, 0.0, through=True)]
    if stats.min >= 0:  # then num_zeros is exactly the share at or below 0
        points.append(_Point(0.0, min(stats.num_zeros / total, 1.0), 0.0, through=True))
    return [p for p in points if math.isfinite(p.x)], total


def _bounds(points: list[_Point], ys, just_below: bool):
    """Lower and upper bounds of F at each of ``ys`` (or at the limits from below them when
    ``just_below``), as two numpy arrays."""
    import numpy as np

    x = np.array([p.x for p in points])[None, :]
    share = np.array([p.share for p in points])[None, :]
    error = np.array([p.error for p in points])[None, :]
    through = np.array([p.through for p in points])[None, :]
    y = np.asarray(ys)[:, None]
    gives_lower = (x < y) | ((x == y) & (not just_below))
    gives_upper = (x > y) | ((x == y) & (just_below | through))
    lower = np.where(gives_lower, share - error, 0.0).max(axis=1, initial=0.0)
    upper = np.where(gives_upper, share + error, 1.0).min(axis=1, initial=1.0)
    return lower, upper


def ks_gap_lower_bound(train_stats, other_stats) -> tuple[float, float, float]:
    """A lower bound of sup |F_train - F_other| from two ``NumericStatistics``, and both counts."""
    a, n = _cumulative_points(train_stats)
    b, m = _cumulative_points(other_stats)
    if not a or not b:
        return 0.0, n, m
    ys = sorted({p.x for p in a + b})
    gap = 0.0
    for just_below in (True, False):
        low_a, up_a = _bounds(a, ys, just_below)
        low_b, up_b = _bounds(b, ys, just_below)
        gap = max(gap, float((low_a - up_b).max()), float((low_b - up_a).max()))
    return gap, n, m


def _ks_test(train_stats, other_stats) -> tuple[Optional[SampleTest], str]:
    from scipy.stats import kstwobign

    gap, n, m = ks_gap_lower_bound(train_stats, other_stats)
    if n <= 0 or m <= 0:
        return None, "a split has no numeric values"
    p_value = float(kstwobign.sf(gap * math.sqrt(n * m / (n + m)))) if gap > 0 else 1.0
    return SampleTest("KS", gap, p_value, n, m), ""


# -- categorical: chi-square on the value counts --------------------------------------------------

def _value_counts(stats) -> tuple[dict[str, float], float]:
    counts = {b.label: float(b.sample_count) for b in stats.rank_histogram.buckets}
    if not counts:
        counts = {v.value: float(v.frequency) for v in stats.top_values}
    total = float(stats.common_stats.tot_num_values) or sum(counts.values())
    rest = total - sum(counts.values())
    if rest > 0.5:  # values beyond the rank histogram's buckets
        counts["\0other"] = counts.get("\0other", 0.0) + rest
    return counts, total


def _chi_square_test(train_stats, other_stats) -> tuple[Optional[SampleTest], str]:
    from scipy.stats import chi2

    a, n = _value_counts(train_stats)
    b, m = _value_counts(other_stats)
    if n <= 0 or m <= 0:
        return None, "a split has no values"
    cells: list[tuple[float, float]] = []
    rare = [0.0, 0.0]
    for value in sorted(set(a) | set(b)):
        x, y = a.get(value, 0.0), b.get(value, 0.0)
        pooled = (x + y) / (n + m)
        if pooled * min(n, m) < MIN_EXPECTED:
            rare[0] += x
            rare[1] += y
        else:
            cells.append((x, y))
    if sum(rare):
        cells.append((rare[0], rare[1]))
    if len(cells) < 2:
        return SampleTest("chi-square", 0.0, 1.0, n, m), ""
    statistic = 0.0
    for x, y in cells:
        pooled = (x + y) / (n + m)
        statistic += (x - n * pooled) ** 2 / (n * pooled) + (y - m * pooled) ** 2 / (m * pooled)
    return SampleTest("chi-square", statistic, float(chi2.sf(statistic, len(cells) - 1)), n, m), ""
