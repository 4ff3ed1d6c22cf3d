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
    "QUICK_QUESTIONS",
    "check_quick_answer",
]


# ----------------------------------------------------------------------------------------
# B.1 Nearest neighbour of a patch
# ----------------------------------------------------------------------------------------


def nearest_patch_cases() -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """(description, query (C,), bank (M, C), expected distance) test cases."""
    bank = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
    cases = [
        ("query (6, 8), bank (0, 0), (3, 4), (10, 0)", np.array([6.0, 8.0]), bank, 5.0),
        ("a query that is in the bank", np.array([3.0, 4.0]), bank, 0.0),
        ("query (0, 1): the nearest is (0, 0)", np.array([0.0, 1.0]), bank, 1.0),
    ]
    rng = np.random.default_rng(5)
    for i in range(3):
        query, many = rng.normal(size=16), rng.normal(size=(50, 16))
        expected = float(np.sqrt(((many - query) ** 2).sum(axis=1)).min())
        cases.append((f"random case {i + 1} (16 channels, 50 vectors)", query, many, expected))
    return cases


def check_nearest_patch_distance(fn) -> bool:
    """Check ``fn(query, bank) -> float``: the ℓ2 (Euclidean) distance from ``query`` (C,)
    to the nearest row of ``bank`` (M, C) — the nearest-neighbour baseline's score of one
    feature vector (PatchCore without coreset)."""
    exercise = "Exercise B.1 (nearest neighbour of a patch)"
    for description, query, bank, expected in nearest_patch_cases():
        got = attempt(exercise, fn, query.copy(), bank.copy())
        try:
            got = float(got)
        except (TypeError, ValueError):
            fail(exercise, f"return one number, got {got!r}.")
        if np.isclose(got, expected, atol=1e-6):
            continue
        distances = np.sqrt(((bank - query) ** 2).sum(axis=1))
        if np.isclose(got, expected**2, atol=1e-6) and expected not in (0.0, 1.0):
            hint = "That is the squared distance: take the square root."
        elif np.isclose(got, distances.mean(), atol=1e-6):
            hint = "That is the mean distance to the bank; the score is the smallest one."
        elif np.isclose(got, distances.max(), atol=1e-6):
            hint = "That is the distance to the farthest vector; take the nearest one."
        elif np.isclose(got, np.abs(bank - query).sum(axis=1).min(), atol=1e-6):
            hint = "That is the ℓ1 (city-block) distance; use the Euclidean one."
        else:
            hint = "Compute the Euclidean distance to every row of the bank, keep the smallest."
        fail(exercise, f"on {description} you return {got:.4f}. {hint}")
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
    exercise = "Exercise B.2 (what is distilled?)"
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


# ----------------------------------------------------------------------------------------
# Quick questions
# ----------------------------------------------------------------------------------------

QUICK_QUESTIONS = {
    "B.q1": {
        "question": "Training a nearest-neighbour baseline on N good images of h × w feature "
        "positions: how many vectors does its memory bank hold?",
        "choices": {"a": "N", "b": "h · w", "c": "N · h · w", "d": "the number of channels"},
        "answer": "c",
        "why": "every position of every training image is stored (PatchCore's coreset would "
        "keep a fraction of them).",
    },
    "B.q2": {
        "question": "STFPM uses an ImageNet-pretrained network as teacher and never updates "
        "it. Which distillation scheme is that?",
        "choices": {"a": "offline", "b": "online", "c": "self-distillation"},
        "answer": "a",
        "why": "the teacher is trained beforehand and frozen; online distillation trains "
        "teacher and student together, self-distillation uses one network's own layers.",
    },
    "B.q3": {
        "question": "Which family can segment defects without changing its method, because it "
        "scores every position of a feature map?",
        "choices": {
            "a": "OC-SVM on whole-image features",
            "b": "PaDiM-style per-position Gaussians",
            "c": "Deep-SVDD on whole images",
        },
        "answer": "b",
        "why": "image-level one-class classifiers score an image; they segment only when "
        "applied patch by patch (thesis §3.1).",
    },
}


def check_quick_answer(question: str, answer) -> bool:
    """Immediate feedback on a quick question: ``question`` a key of ``QUICK_QUESTIONS``,
    ``answer`` the letter of one choice."""
    if question not in QUICK_QUESTIONS:
        raise KeyError(f"Unknown question {question!r}; use one of {list(QUICK_QUESTIONS)}.")
    item = QUICK_QUESTIONS[question]
    exercise = f"Quick question {question}"
    if answer is None:
        fail(exercise, f"set the answer to one of the letters {', '.join(item['choices'])}.")
    letter = str(answer).strip().lower()
    if letter not in item["choices"]:
        fail(exercise, f"answer one of the letters {', '.join(item['choices'])}, got {answer!r}.")
    if letter != item["answer"]:
        fail(exercise, f"'{item['choices'][letter]}' is not it — think again and retry.")
    return passed(exercise, item["why"])
