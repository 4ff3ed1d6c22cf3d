"""Chapter 7's checks: the reference passes, the chapter's printed code cannot be pasted
in, and the usual mistakes fail with their hints."""

import pytest
import torch
import torch.nn.functional as F

from stad_utils.exercises import ExerciseError
from stad_utils.exercises.chapter07 import (
    check_fvv_map,
    check_variance_from_sum,
    fvv_map_reference,
)
from stad_utils.methods.fvv import ensemble_error_and_variance
from stad_utils.methods.stfpm import combine_layer_maps


def test_variance_from_sum_answers():
    assert check_variance_from_sum(lambda total, m: 1 - (total / m).pow(2).sum(1)) is True
    with pytest.raises(ExerciseError, match="1 − ‖mean‖²"):
        check_variance_from_sum(lambda total, m: (total / m).pow(2).sum(1))
    with pytest.raises(ExerciseError, match="divide it by m"):
        check_variance_from_sum(lambda total, m: 1 - total.pow(2).sum(1))
    with pytest.raises(ExerciseError, match="not M − 1"):
        check_variance_from_sum(lambda total, m: (1 - (total / m).pow(2).sum(1)) * m / (m - 1))


def test_the_identity_behind_the_exercise():
    generator = torch.Generator().manual_seed(2)
    students = [torch.randn(2, 5, 3, 3, generator=generator) for _ in range(4)]
    total = sum(F.normalize(s, dim=1) for s in students)
    variance = ensemble_error_and_variance(students[0], students)[1]
    assert torch.allclose(variance, 1 - (total / 4).pow(2).sum(1), atol=1e-6)


def test_fvv_map_answers():
    assert check_fvv_map(fvv_map_reference) is True

    def error_only(teacher, students, size):
        return combine_layer_maps(
            [ensemble_error_and_variance(teacher[k], [s[k] for s in students])[0] for k in teacher],
            size,
        )

    with pytest.raises(ExerciseError, match="error e_k only"):
        check_fvv_map(error_only)

    def added(teacher, students, size):
        return sum(
            combine_layer_maps(
                [sum(ensemble_error_and_variance(teacher[k], [s[k] for s in students]))], size
            )
            for k in teacher
        )

    with pytest.raises(ExerciseError, match="added the layers"):
        check_fvv_map(added)
