"""Chapter 6's checks: the reference passes, the usual mistakes fail with their hints."""

import pytest
import torch

from stad_utils.exercises import ExerciseError
from stad_utils.exercises.chapter06 import (
    check_combine_maps,
    check_per_image_loss,
    per_image_reference,
)
from stad_utils.methods.stfpm import combine_layer_maps, normalized_distance, pyramid_loss


def test_the_mean_of_the_per_image_losses_is_the_batch_loss():
    generator = torch.Generator().manual_seed(1)
    t = {k: torch.randn(4, 3, s, s, generator=generator) for k, s in (("a", 8), ("b", 4))}
    s = {k: torch.randn(4, 3, v.shape[-1], v.shape[-1], generator=generator) for k, v in t.items()}
    assert torch.allclose(per_image_reference(t, s).mean(), pyramid_loss(t, s))


def test_per_image_loss_answers():
    assert check_per_image_loss(per_image_reference) is True
    with pytest.raises(ExerciseError, match="one value per image"):
        check_per_image_loss(pyramid_loss)  # the batch's loss, a scalar
    with pytest.raises(ExerciseError, match="summed over the positions"):
        check_per_image_loss(
            lambda t, s: sum(normalized_distance(t[k], s[k]).sum(dim=(1, 2)) for k in t)
        )
    with pytest.raises(ExerciseError, match="averaged the layers"):
        check_per_image_loss(lambda t, s: per_image_reference(t, s) / len(t))


def test_combine_answers():
    assert check_combine_maps(combine_layer_maps) is True
    with pytest.raises(ExerciseError, match="added the maps"):
        check_combine_maps(lambda maps, size: sum(combine_layer_maps([m], size) for m in maps))
