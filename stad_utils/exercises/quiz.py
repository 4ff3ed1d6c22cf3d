"""Quick checks: short conceptual questions at the end of every chapter.

Each question is a box in the book with its answer folded below it (it works in the
static book, no kernel needed). In a notebook, :func:`quick_check` gives immediate
feedback instead, so the student copy (which drops the folded answers) still answers.
The book's boxes are generated from :data:`QUESTIONS` by :func:`question_markdown` and
:func:`answer_markdown`; a test keeps the notebooks and this module in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    """A multiple-choice question (``options`` given, ``answer`` a letter) or a numeric
    one (no options, ``answer`` a number accepted within ``tolerance``)."""

    text: str
    answer: str | float
    why: str  # shown once the answer is right (and in the book's folded answer)
    hint: str  # shown after a wrong answer; never gives the answer away
    options: tuple[str, ...] = ()
    tolerance: float = 1e-3

    @property
    def numeric(self) -> bool:
        return not self.options


QUESTIONS: dict[str, Question] = {
    "1.A": Question(
        "What does the training set of an anomaly detector in this book contain?",
        "b",
        "Training sees good images only; defect labels and masks are kept for evaluation.",
        "Think of a factory that has not yet seen its future defects.",
        ("good and defective images, labelled", "good images only", "defective images only"),
    ),
    "1.B": Question(
        "A 5 × 5-pixel defect sits in a 256 × 256 image. What fraction of the image's pixels "
        "is defective? (A number, e.g. 0.01.)",
        25 / 65536,
        "25 / 65,536 ≈ 0.00038: defective pixels are rare, so a pixel metric is dominated "
        "by good pixels and by large defects.",
        "Divide the defect's area by the image's area.",
        tolerance=2e-5,
    ),
    "2.A": Question(
        "Every anomaly map is multiplied by 10 and then 3 is added. Which of image AUROC, "
        "pixel AUROC and AU-PRO change?",
        "c",
        "All three depend only on the order of the scores, which an increasing affine map "
        "keeps; only the threshold's *value* moves.",
        "What do the three metrics need from the scores: their values or their order?",
        ("all three", "only AU-PRO, which thresholds the maps", "none of them"),
    ),
    "2.B": Question(
        "A prediction covers 30 pixels, the defect 20, and 10 pixels are in both. What is "
        "the Dice score?",
        0.4,
        "2 · 10 / (30 + 20) = 0.4.",
        "Dice = 2 |P ∩ G| / (|P| + |G|).",
    ),
    "2.C": Question(
        "Why is the image-level F1-optimal threshold an *oracle*?",
        "a",
        "It is chosen with the test labels, which a factory setting its threshold does not "
        "have; a deployable rule uses good validation images only.",
        "Which data does the F1 score need that a factory lacks?",
        (
            "it is chosen with the test set's labels",
            "it is computed on validation images",
            "it maximizes the pixel AUROC",
        ),
    ),
    "3.A": Question(
        "In the triplet loss with margin 1, δ⁺ = 0.2 and δ⁻ = 1.5. What is the loss of this "
        "triplet?",
        0.0,
        "max(0, 0.2 − 1.5 + 1) = max(0, −0.3) = 0: the negative is already far enough, so "
        "this triplet teaches nothing.",
        "L_m = max(0, δ⁺ − δ⁻ + margin).",
    ),
    "3.B": Question(
        "Why is the descriptive teacher pre-trained on natural images, not on the inspection data?",
        "a",
        "It must describe any patch, defects included, which the good inspection images "
        "never show; natural images cover far more of what a patch can look like.",
        "Which patches will the teacher have to describe at test time?",
        (
            "it must describe any patch, including defects it never saw",
            "natural images are smaller, so training is faster",
            "the inspection data has no labels",
        ),
    ),
    "4.A": Question(
        "A patch network has three 2 × 2 max-poolings of stride 2. Evaluated densely at every "
        "offset, how many shifted maps per image does the last layer process?",
        64.0,
        "Each pooling multiplies the offsets by s² = 4: 4 · 4 · 4 = 64.",
        "Each stride-s pooling needs s² offsets; the poolings compound.",
        tolerance=0.5,
    ),
    "4.B": Question(
        "How do the dense descriptors of chapter 4 compare with the patch network applied "
        "to each pixel's patch separately?",
        "a",
        "They are the same numbers (up to float rounding): the dense pass only shares the "
        "work of overlapping patches.",
        "What does the offset trick change: the computation, or only how it is shared?",
        (
            "identical, up to rounding",
            "an approximation that pooling blurs",
            "identical in the centre, different everywhere near a pooling border",
        ),
    ),
    "5.A": Question(
        "Two students predict the vectors (1, 0) and (−1, 0) at a pixel. What is their "
        "predictive variance v (eq. 7)?",
        1.0,
        "The mean of ‖μ_i‖² is 1 and the mean vector is (0, 0), so v = 1 − 0 = 1: they "
        "disagree completely.",
        "v = mean of ‖μ_i‖² − ‖mean of μ_i‖².",
    ),
    "5.B": Question(
        "Why are e and v standardized with statistics of good *validation* images rather "
        "than of the test images?",
        "b",
        "Test statistics depend on how many defects the test set holds: an image's score "
        "would change with the test set, and the labels would leak into the score.",
        "What would happen to an image's score if the test set had more defects?",
        (
            "validation images are faster to score",
            "test statistics depend on the test set, so a score would too",
            "the test images have no masks",
        ),
    ),
    "6.A": Question(
        "At one position the student's feature vector is −2 times the teacher's. What is "
        "the STFPM distance ½‖t̂ − ŝ‖² there?",
        2.0,
        "After normalization ŝ = −t̂, so ½‖2 t̂‖² = ½ · 4 = 2, the largest value possible.",
        "Normalize both vectors first: only their directions count.",
    ),
    "6.B": Question(
        "Why does STFPM multiply the upsampled layer maps rather than add them?",
        "a",
        "A product is high only where every layer is high, which suppresses the isolated "
        "noise of one layer; the price is that a defect only one layer sees is damped.",
        "When is a product of three numbers in [0, 2] large?",
        (
            "a high score then needs every layer to agree",
            "multiplication is cheaper than addition",
            "the product is already normalized to [0, 1]",
        ),
    ),
    "7.A": Question(
        "Two students' normalized vectors at a position are perpendicular. What is the "
        "variance v_k (eq. 5.3, dividing by M)?",
        0.5,
        "v_k = 1 − ‖mean‖² for unit vectors; the mean of two perpendicular unit vectors has "
        "squared length ½, so v_k = 0.5.",
        "For unit vectors, v_k = 1 − ‖mean of the students‖².",
    ),
    "7.B": Question(
        "All students predict the same vector, far from the teacher's. Which term of FVV's "
        "score is large?",
        "a",
        "The students agree, so the variance is 0; their shared mistake shows in the error.",
        "Which term measures disagreement, and which distance to the teacher?",
        ("the error e_k only", "the variance v_k only", "both"),
    ),
    "8.A": Question(
        "How many parameters has a 3 × 3 convolution from 64 to 16 channels without bias?",
        9216.0,
        "3 · 3 · 64 · 16 = 9,216.",
        "kernel height × kernel width × input channels × output channels.",
        tolerance=0.5,
    ),
    "8.B": Question(
        "Why can a thinner student find defects better than a full-size one?",
        "a",
        "With less capacity it imitates the teacher well only on what it trained on; on "
        "unseen defective patterns its error stays large.",
        "What should a student be *unable* to do well?",
        (
            "it has less capacity to imitate the teacher on patterns it never saw",
            "it sees more training images per second",
            "its feature maps have a higher resolution",
        ),
    ),
    "9.A": Question(
        "Method A costs 10 s and reaches AU-PRO 0.80, B 20 s and 0.85, C 30 s and 0.84. "
        "Which are on the Pareto front of (cost, AU-PRO)?",
        "a",
        "C costs more than B and gains less: B dominates it. A and B are each best at something.",
        "A method leaves the front when another costs no more and gains no less.",
        ("A and B", "A, B and C", "B only"),
    ),
    "9.B": Question(
        "Three seeds give AU-PRO 0.80, 0.82 and 0.84. What is the sample standard deviation?",
        0.02,
        "The mean is 0.82; the squared deviations sum to 0.0008; divided by n − 1 = 2 it is "
        "0.0004, whose root is 0.02.",
        "Divide the sum of squared deviations by n − 1, then take the square root.",
        tolerance=2e-4,
    ),
    "B.A": Question(
        "A nearest-neighbour baseline is trained on N good images whose feature maps have "
        "h × w positions. How many vectors does its memory bank hold?",
        "c",
        "Every position of every training image is stored (PatchCore's coreset would keep a "
        "fraction of them).",
        "What does the baseline compare a test position with?",
        ("N", "h · w", "N · h · w", "the number of channels"),
    ),
    "B.B": Question(
        "STFPM uses an ImageNet-pretrained network as its teacher and never updates it. "
        "Which distillation scheme is that?",
        "a",
        "The teacher is trained beforehand and frozen; online distillation trains teacher "
        "and student together, self-distillation uses one network's own layers.",
        "When was the teacher trained, and does it change while the student learns?",
        ("offline", "online", "self-distillation"),
    ),
    "B.C": Question(
        "Which family can segment defects without changing its method, because it scores "
        "every position of a feature map?",
        "b",
        "Image-level one-class classifiers score a whole image; they segment only when "
        "applied patch by patch (thesis §3.1).",
        "Which of them gives one score per position rather than one per image?",
        (
            "OC-SVM on whole-image features",
            "PaDiM-style per-position Gaussians",
            "Deep-SVDD on whole images",
        ),
    ),
}


def _letters(question: Question) -> list[str]:
    return [chr(ord("a") + i) for i in range(len(question.options))]


def _right(question: Question, answer) -> bool:
    if question.numeric:
        return math.isclose(float(answer), float(question.answer), abs_tol=question.tolerance)
    return str(answer).strip().lower().strip("()") == question.answer


def quick_check(key: str, answer=None) -> bool | None:
    """Say whether ``answer`` (a letter, or a number) answers quick check ``key``.

    Prints ``✔`` and why, or ``✘`` and a hint; ``None`` (the cell as handed out) prints
    what to do and returns ``None``.
    """
    if key not in QUESTIONS:
        raise KeyError(f"No quick check {key!r}; the questions are {', '.join(QUESTIONS)}.")
    question = QUESTIONS[key]
    if answer is None:
        kind = "a number" if question.numeric else f"one of {', '.join(_letters(question))}"
        print(f"Quick check {key}: replace None by your answer ({kind}) and run the cell.")
        return None
    if not question.numeric and str(answer).strip().lower().strip("()") not in _letters(question):
        raise ValueError(
            f"Quick check {key} takes a letter, one of {', '.join(_letters(question))}; "
            f"got {answer!r}."
        )
    if _right(question, answer):
        print(f"✔ Quick check {key}: right. {question.why}")
        return True
    print(f"✘ Quick check {key}: not quite. {question.hint}")
    return False


def question_markdown(key: str) -> str:
    """The book's box for quick check ``key``."""
    question = QUESTIONS[key]
    lines = [f":::{{admonition}} Quick check {key}", ":class: tip", "", question.text]
    if question.options:
        lines.append("")
        lines += [
            f"({letter}) {text}  "
            for letter, text in zip(_letters(question), question.options, strict=True)
        ]
        lines[-1] = lines[-1].rstrip()
    lines.append(":::")
    return "\n".join(lines)


def answer_markdown(key: str) -> str:
    """The book's folded answer to quick check ``key``."""
    question = QUESTIONS[key]
    answer = f"({question.answer})" if question.options else f"{question.answer:g}"
    return "\n".join(
        [
            f":::{{admonition}} Answer {key}",
            ":class: dropdown",
            "",
            f"**{answer}** {question.why}",
            ":::",
        ]
    )


def chapter_label(notebook_stem: str) -> str:
    """How exercises and quick checks of a notebook are numbered: ``06_stfpm`` → ``"6"``;
    the interlude after chapter 2, ``02b_the_field``, → ``"B"`` (for Background)."""
    prefix = notebook_stem.split("_")[0]
    return "B" if prefix == "02b" else prefix.lstrip("0")


def check_cell(key: str) -> str:
    """The notebook's live cell for quick check ``key``."""
    return f'quick_check("{key}", None)  # your answer in place of None'
