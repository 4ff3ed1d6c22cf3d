"""Every chapter's checks turn an unfinished exercise (the student copy's stub) into the
same friendly message, through the one shared `attempt`."""

import pytest

from stad_utils.exercises import (
    ExerciseError,
    chapter01,
    chapter03,
    chapter06,
    chapter07,
    chapter08,
)


def stub(*args, **kwargs):
    raise NotImplementedError("Your turn")


@pytest.mark.parametrize(
    "check",
    [
        chapter01.check_count_regions,
        chapter03.check_triplet_loss,
        chapter03.check_compactness_loss,
        chapter06.check_per_image_loss,
        chapter06.check_combine_maps,
        chapter07.check_variance_from_sum,
        chapter07.check_fvv_map,
        chapter08.check_block_parameters,
        chapter08.check_slim_block,
    ],
    ids=lambda check: check.__name__,
)
def test_a_stub_gets_the_friendly_message(check):
    with pytest.raises(ExerciseError, match="still raises NotImplementedError"):
        check(stub)


def test_wrong_answers_get_hints():
    with pytest.raises(ExerciseError, match="4-connectivity"):
        chapter01.check_count_regions(lambda mask: __import__("scipy").ndimage.label(mask)[1])
    with pytest.raises(ExerciseError, match="factor 2"):
        chapter06.check_per_image_loss(lambda t, s: 2 * chapter06.per_image_reference(t, s))
    with pytest.raises(ExerciseError, match="downsample"):
        chapter08.check_block_parameters(lambda c_in, inner, c_out, stride: 9 * c_in * inner)
