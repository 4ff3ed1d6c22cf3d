"""The checks of the interlude's exercises accept right answers and explain wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from stad_utils.exercises import ExerciseError
from stad_utils.exercises.chapter02b import (
    DISTILLATION_EXAMPLES,
    QUICK_QUESTIONS,
    check_knowledge_kinds,
    check_nearest_patch_distance,
    check_quick_answer,
)


def nearest_right(query, bank):
    return np.sqrt(((bank - query) ** 2).sum(axis=1)).min()


def nearest_squared(query, bank):
    return ((bank - query) ** 2).sum(axis=1).min()


def nearest_mean(query, bank):
    return np.sqrt(((bank - query) ** 2).sum(axis=1)).mean()


def nearest_l1(query, bank):
    return np.abs(bank - query).sum(axis=1).min()


def stub(query, bank):
    raise NotImplementedError("Your turn")


def test_nearest_patch_distance_accepts_the_right_answer():
    assert check_nearest_patch_distance(nearest_right) is True


@pytest.mark.parametrize(
    "answer, hint",
    [
        (nearest_squared, "squared distance"),
        (nearest_mean, "mean distance"),
        (nearest_l1, "ℓ1"),
        (stub, "NotImplementedError"),
        (lambda q, b: "five", "one number"),
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


def test_quick_answers_give_immediate_feedback():
    for key, item in QUICK_QUESTIONS.items():
        assert check_quick_answer(key, item["answer"].upper()) is True
        wrong = next(c for c in item["choices"] if c != item["answer"])
        with pytest.raises(ExerciseError, match="not it"):
            check_quick_answer(key, wrong)
    with pytest.raises(ExerciseError, match="set the answer"):
        check_quick_answer("B.q1", None)
    with pytest.raises(ExerciseError, match="one of the letters"):
        check_quick_answer("B.q1", "z")
    with pytest.raises(KeyError, match="Unknown question"):
        check_quick_answer("B.q9", "a")
