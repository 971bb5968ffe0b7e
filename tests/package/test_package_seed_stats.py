"""One seed aggregation (mean ± population std) for every recipe."""

import pytest

from lowshot.utils.seed import seed_mean_std


def test_mean_and_population_std_per_metric_over_the_seeds_that_report_it() -> None:
    per_seed = [{"HM": 1.0, "S": 2.0, "beta": 9.0}, {"HM": 3.0, "S": 6.0}, {"HM": 5.0}]
    assert seed_mean_std(per_seed, ["S", "HM"]) == {
        "S": {"mean": 4.0, "std": 2.0},  # over the two seeds with S; std with ddof=0
        "HM": {"mean": 3.0, "std": pytest.approx((8 / 3) ** 0.5)},
    }
    assert list(seed_mean_std(per_seed)) == ["HM", "S", "beta"]  # default: every metric, sorted
