"""Chapter 3's checks: the reference passes, the chapter's own code and the usual
mistakes fail with their hints."""

import pytest
import torch

from stad_utils.exercises import ExerciseError
from stad_utils.exercises.chapter03 import (
    check_compactness_loss,
    check_triplet_loss,
    hardest_negative_triplet,
)
from stad_utils.losses import compactness_loss, triplet_loss


def test_the_hardest_negative_reduces_to_eq_2_with_one_negative():
    generator = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(5, 7, generator=generator) for _ in range(3))
    assert torch.allclose(
        hardest_negative_triplet(a, p, n[:, None], 1.0), triplet_loss(a, p, n, 1.0)
    )


def test_triplet_answers():
    assert check_triplet_loss(hardest_negative_triplet) is True
    with pytest.raises(ExerciseError, match="only the first negative"):
        check_triplet_loss(lambda a, p, negs, m: triplet_loss(a, p, negs[:, 0], m))
    with pytest.raises(ExerciseError, match="averaged K separate"):
        check_triplet_loss(
            lambda a, p, negs, m: torch.stack(
                [triplet_loss(a, p, negs[:, k], m) for k in range(negs.shape[1])]
            ).mean()
        )

    def no_swap(a, p, negs, m):
        d_neg = (a[:, None] - negs).pow(2).sum(2).amin(1)
        return torch.clamp((a - p).pow(2).sum(1) - d_neg + m, min=0).mean()

    with pytest.raises(ExerciseError, match="Keep the swap"):
        check_triplet_loss(no_swap)


def test_compactness_answers():
    assert check_compactness_loss(lambda x: compactness_loss(x, "dimensions")) is True
    with pytest.raises(ExerciseError, match="over the \\*patches\\*"):
        check_compactness_loss(compactness_loss)  # the chapter's printed reading
    with pytest.raises(ExerciseError, match="absolute values"):
        check_compactness_loss(lambda x: compactness_loss(x, "dimensions", absolute=False))
