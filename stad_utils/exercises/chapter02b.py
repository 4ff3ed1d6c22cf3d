"""Checks for the exercises of the interlude *The field around student–teacher methods*.

* :func:`check_nearest_patch_distance` — exercise B.1, the score of the nearest-neighbour
  baseline for one feature vector;
* :func:`check_knowledge_kinds` — exercise B.2, classifying distillation examples as
  response-, feature- or relation-based (thesis §4.2.1);
* :func:`check_quick_answer` — the interlude's quick questions, with immediate feedback.

Each check returns ``True`` or raises :class:`~stad_utils.exercises.ExerciseError` with a
hint; the checks never print the answer.
"""

from __future__ import annotations

import numpy as np

from stad_utils.exercises import attempt, fail, passed

__all__ = [
    "check_nearest_patch_distance",
    "nearest_patch_cases",
    "DISTILLATION_EXAMPLES",
    "check_knowledge_kinds",
]


# ----------------------------------------------------------------------------------------
# B.1 Nearest neighbour of a patch
# ----------------------------------------------------------------------------------------


def nearest_patch_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(description, query (C,), training features (N, C, h, w)) test cases."""
    features = np.zeros((2, 2, 2, 3))  # 2 images, 2 channels, 2 × 3 positions
    features[0, :, 0, 0] = (3.0, 4.0)
    features[1, :, 1, 2] = (10.0, 0.0)
    features[1, :, 0, 1] = (6.0, 7.0)
    cases = [
        ("query (6, 8): nearest is image 1, row 0, column 1", np.array([6.0, 8.0]), features),
        ("a query equal to image 0, row 0, column 0", np.array([3.0, 4.0]), features),
        ("query (9, 0): nearest is image 1, row 1, column 2", np.array([9.0, 0.0]), features),
    ]
    rng = np.random.default_rng(5)
    for i in range(3):
        cases.append(
            (
                f"random case {i + 1} (5 images, 16 channels, 4 × 6 positions)",
                rng.normal(size=16),
                rng.normal(size=(5, 16, 4, 6)),
            )
        )
    return cases


def _all_distances(query: np.ndarray, features: np.ndarray) -> np.ndarray:
    """(N, h, w): the Euclidean distance from ``query`` to every training vector."""
    return np.sqrt(((features - query[None, :, None, None]) ** 2).sum(axis=1))


def check_nearest_patch_distance(fn) -> bool:
    """Check ``fn(query, features) -> (distance, (image, row, column))``: the ℓ2 distance
    from ``query`` (C,) to the nearest training vector in ``features`` (N, C, h, w) — the
    nearest-neighbour baseline's score — and where that vector is."""
    exercise = "Exercise B.1 · Nearest neighbour of a patch"
    for description, query, features in nearest_patch_cases():
        answer = attempt(exercise, fn, query.copy(), features.copy())
        try:
            got, where = answer
            got = float(got)
            where = tuple(int(k) for k in where)
        except (TypeError, ValueError):
            fail(exercise, f"return (distance, (image, row, column)), got {answer!r}.")
        distances = _all_distances(query, features)
        expected = float(distances.min())
        if not np.isclose(got, expected, atol=1e-6):
            if np.isclose(got, expected**2, atol=1e-6):
                hint = "That is the squared distance: take the square root."
            elif np.isclose(got, distances.mean(), atol=1e-6):
                hint = "That is the mean distance; the score is the smallest one."
            elif np.isclose(got, np.abs(features - query[None, :, None, None]).sum(1).min()):
                hint = "That is the ℓ1 (city-block) distance; use the Euclidean one."
            else:
                hint = "Compute the Euclidean distance to every training vector, keep the smallest."
            fail(exercise, f"on {description} your distance is {got:.4f}. {hint}")
        if len(where) != 3 or not all(
            0 <= k < n for k, n in zip(where, distances.shape, strict=False)
        ):
            fail(
                exercise,
                f"on {description} the location {where} is not an (image, row, column) "
                f"inside {distances.shape}.",
            )
        if not np.isclose(distances[where], expected, atol=1e-6):
            fail(
                exercise,
                f"on {description} the distance is right but {where} is not where the nearest "
                "vector is. The channels are axis 1: move them last before flattening, so "
                "that a flat index splits into (image, row, column), e.g. with np.unravel_index.",
            )
    return passed(exercise, f"{len(nearest_patch_cases())} cases match")


# ----------------------------------------------------------------------------------------
# B.2 What is distilled?
# ----------------------------------------------------------------------------------------

# Knowledge types of thesis §4.2.1 (after Gou et al. 2021): what the student imitates.
DISTILLATION_EXAMPLES = {
    "a": "A small classifier is trained to match the teacher's class probabilities, "
    "softened with a temperature T = 4 (eqs. 4.4–4.5).",
    "b": "STFPM: at layers 1, 2 and 3 the student's feature vector at every position is "
    "pulled towards the teacher's (cosine distance, eq. 4.15).",
    "c": "The student learns to reproduce the Gram matrix of inner products between the "
    "teacher's layer-2 and layer-3 feature maps (eq. 4.7).",
    "d": "For every pair of images in a batch the student's similarity of the two images "
    "must match the teacher's similarity of the same pair.",
    "e": "A student detector matches the class scores that the teacher detector outputs for "
    "each box.",
}
_KINDS = ("response", "feature", "relation")
_EXPECTED_KINDS = {
    "a": "response",
    "b": "feature",
    "c": "relation",
    "d": "relation",
    "e": "response",
}
_WHY = {
    "a": "the student imitates the teacher's final outputs (logits softened by T).",
    "b": "the student imitates intermediate feature maps, position by position.",
    "c": "the student imitates how two of the teacher's layers relate, not the layers.",
    "d": "what is matched is a relation between samples, not any single output or feature.",
    "e": "class scores are the detector's outputs, its response.",
}


def check_knowledge_kinds(answers) -> bool:
    """Check ``answers``: a dict from each example's letter in ``DISTILLATION_EXAMPLES`` to
    ``"response"``, ``"feature"`` or ``"relation"`` — which kind of knowledge the student
    imitates (thesis §4.2.1)."""
    exercise = "Exercise B.2 · What is distilled?"
    if not isinstance(answers, dict):
        fail(exercise, f"give a dict such as {{'a': 'response', …}}, got {type(answers).__name__}.")
    missing = sorted(set(_EXPECTED_KINDS) - set(answers))
    if missing:
        fail(exercise, f"classify every example; missing: {', '.join(missing)}.")
    wrong = []
    for letter, expected in _EXPECTED_KINDS.items():
        given = str(answers[letter]).strip().lower().removesuffix("-based").strip()
        if given not in _KINDS:
            fail(exercise, f"example {letter}: answer one of {_KINDS}, got {answers[letter]!r}.")
        if given != expected:
            wrong.append(letter)
    if wrong:
        fail(
            exercise,
            f"look again at example(s) {', '.join(wrong)}: ask *what* the student is asked to "
            "reproduce — the teacher's outputs, its intermediate features, or relations "
            "between features (of two layers, or of two samples).",
        )
    reasons = "; ".join(f"{k}: {v}" for k, v in _WHY.items())
    return passed(exercise, f"all {len(_EXPECTED_KINDS)} right ({reasons})")
