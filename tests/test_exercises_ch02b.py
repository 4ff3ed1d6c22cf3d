"""The checks of the interlude's exercises accept right answers and explain wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from stad_utils.exercises import ExerciseError
from stad_utils.exercises.chapter02b import (
    DISTILLATION_EXAMPLES,
    check_knowledge_kinds,
    check_nearest_patch_distance,
)


def _distances(query, features):
    return np.sqrt(((features - query[None, :, None, None]) ** 2).sum(axis=1))


def nearest_right(query, features):
    distances = _distances(query, features)
    where = np.unravel_index(distances.argmin(), distances.shape)
    return distances[where], where


def nearest_squared(query, features):
    distance, where = nearest_right(query, features)
    return distance**2, where


def nearest_mean(query, features):
    return _distances(query, features).mean(), (0, 0, 0)


def nearest_l1(query, features):
    distances = np.abs(features - query[None, :, None, None]).sum(axis=1)
    return distances.min(), np.unravel_index(distances.argmin(), distances.shape)


def nearest_channels_not_moved(query, features):
    """The classic slip: flattening (N, C, h, w) to rows without moving C last."""
    rows = features.reshape(-1, features.shape[1])
    distance = _distances(query, features).min()
    index = int(np.sqrt(((rows - query) ** 2).sum(axis=1)).argmin())
    n, _, h, w = features.shape
    return distance, np.unravel_index(index, (n, h, w))


def stub(query, features):
    raise NotImplementedError("Your turn")


def test_nearest_patch_distance_accepts_the_right_answer():
    assert check_nearest_patch_distance(nearest_right) is True


@pytest.mark.parametrize(
    "answer, hint",
    [
        (nearest_squared, "squared distance"),
        (nearest_mean, "mean distance"),
        (nearest_l1, "ℓ1"),
        (nearest_channels_not_moved, "not where the nearest"),
        (lambda q, f: (1.0, (9, 9, 9)), "(not an|distance is)"),
        (stub, "NotImplementedError"),
        (lambda q, f: "five", "return \\(distance"),
    ],
)
def test_nearest_patch_distance_explains_wrong_answers(answer, hint):
    with pytest.raises(ExerciseError, match=hint):
        check_nearest_patch_distance(answer)


RIGHT_KINDS = {"a": "response", "b": "feature", "c": "relation", "d": "relation", "e": "response"}


def test_knowledge_kinds_accepts_the_right_answer_in_any_spelling():
    assert set(DISTILLATION_EXAMPLES) == set(RIGHT_KINDS)
    assert check_knowledge_kinds(RIGHT_KINDS) is True
    spelled = {k: f" {v.title()}-based" for k, v in RIGHT_KINDS.items()}
    assert check_knowledge_kinds(spelled) is True


def test_knowledge_kinds_names_the_wrong_examples_without_the_answer():
    wrong = dict(RIGHT_KINDS, c="feature", e="feature")
    with pytest.raises(ExerciseError, match="example\\(s\\) c, e") as error:
        check_knowledge_kinds(wrong)
    assert "relation-based" not in str(error.value)
    with pytest.raises(ExerciseError, match="missing: d"):
        check_knowledge_kinds({k: v for k, v in RIGHT_KINDS.items() if k != "d"})
    with pytest.raises(ExerciseError, match="one of"):
        check_knowledge_kinds(dict(RIGHT_KINDS, a="logits"))
    with pytest.raises(ExerciseError, match="dict"):
        check_knowledge_kinds(["response"])
