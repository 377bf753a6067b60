"""Vote weights (DESIGN §5): household, or contribution with a floor of 1."""

from __future__ import annotations

import pytest

from governance import GovernanceError, compute_weights


def test_household_gives_one_each():
    assert compute_weights("household", ["b", "a"]) == {"a": 1, "b": 1}


def test_household_ignores_contribution_figures():
    assert compute_weights("household", ["a"], {"a": 10**6}) == {"a": 1}


def test_contribution_is_levy_plus_public_service_at_official_rates():
    # 90 minutes at 100 kWh per hour = 150 000 Wh
    weights = compute_weights("contribution", ["a", "b", "c"], {"a": 35_000, "b": 100_000},
                              {"a": 90}, hour_wh=100_000)
    assert weights == {"a": 185_000, "b": 100_000, "c": 1}


def test_contribution_rounds_service_value_down_to_whole_wh():
    assert compute_weights("contribution", ["a"], {}, {"a": 1}, hour_wh=100) == {"a": 1}
    assert compute_weights("contribution", ["a"], {}, {"a": 7}, hour_wh=100) == {"a": 11}


def test_contribution_floor_is_one():
    assert compute_weights("contribution", ["a"], {"a": 0}, {"a": 0}) == {"a": 1}


def test_invalid_kind():
    with pytest.raises(GovernanceError, match="unknown vote weight 'wealth'"):
        compute_weights("wealth", ["a"])


def test_invalid_levy_for_unknown_household():
    with pytest.raises(GovernanceError, match="unknown household 'z'"):
        compute_weights("contribution", ["a"], {"z": 5})


@pytest.mark.parametrize("amount", [-1, 2.5])
def test_invalid_amount(amount):
    with pytest.raises(GovernanceError, match="integer >= 0"):
        compute_weights("contribution", ["a"], {}, {"a": amount})
