"""Chapter 5's checks: right answers pass, the usual mistakes get their hints."""

import pytest
import torch

from stad_utils.exercises import ExerciseError
from stad_utils.exercises.chapter05 import check_combine_scales, check_predictive_variance
from stad_utils.methods.us_scores import predictive_variance, standardized_score


def stub(*args, **kwargs):
    raise NotImplementedError("Your turn")


@pytest.mark.parametrize("check", [check_predictive_variance, check_combine_scales])
def test_a_stub_gets_the_friendly_message(check):
    with pytest.raises(ExerciseError, match="still raises NotImplementedError"):
        check(stub)


def test_predictive_variance_answers():
    assert check_predictive_variance(predictive_variance) is True
    # an answer in float64, or as a NumPy array, is checked like any other
    assert check_predictive_variance(lambda s: predictive_variance(s).double().numpy()) is True
    with pytest.raises(ExerciseError, match="M − 1"):
        check_predictive_variance(lambda s: torch.stack(s).var(0, unbiased=True).sum(1))
    with pytest.raises(ExerciseError, match="mean"):
        check_predictive_variance(lambda s: torch.stack(s).pow(2).sum(2).mean(0))
    with pytest.raises(ExerciseError, match="not a standard deviation"):
        check_predictive_variance(lambda s: predictive_variance(s).sqrt())


def _mean_of_scores(errors, variances, stats):
    return torch.stack(
        [standardized_score(errors[p], variances[p], stats[p]) for p in errors]
    ).mean(0)


def test_combine_scales_answers():
    assert check_combine_scales(_mean_of_scores) is True

    def summed(errors, variances, stats):
        return torch.stack(
            [standardized_score(errors[p], variances[p], stats[p]) for p in errors]
        ).sum(0)

    def test_statistics(errors, variances, stats):
        return torch.stack(
            [
                (errors[p] - errors[p].mean()) / errors[p].std()
                + (variances[p] - variances[p].mean()) / variances[p].std()
                for p in errors
            ]
        ).mean(0)

    with pytest.raises(ExerciseError, match="summed"):
        check_combine_scales(summed)
    with pytest.raises(ExerciseError, match="validation"):
        check_combine_scales(test_statistics)


def test_every_ensemble_check_takes_float64_and_numpy_answers():
    """answer_like converts the answer for chapters 5-7 alike (a float64 answer once
    crashed chapter 7's check instead of passing)."""
    from stad_utils.exercises.chapter07 import check_variance_from_sum

    assert check_variance_from_sum(
        lambda total, m: (1 - (total / m).pow(2).sum(1)).double().numpy()
    )
    wrong_shape = r"for three random students the shape is \(2, 4\), expected \(2, 3, 4\) \(one"
    with pytest.raises(ExerciseError, match=wrong_shape):
        check_predictive_variance(lambda s: predictive_variance(s)[:, 0])
