"""The cost box atop every chapter (book/_ext/cost_box.py) and its data,
book/_data/full_costs.json (written by benchmarks/bench_full_costs.py)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "book" / "_ext"))
sys.path.insert(0, str(REPO / "benchmarks"))
import cost_box  # noqa: E402

COSTS_FILE = REPO / "book" / "_data" / "full_costs.json"
COSTS = json.loads(COSTS_FILE.read_text(encoding="utf-8"))
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
ASSUMPTIONS = {
    "gpu": "T4 (16 GB)",
    "throughput_flops": 8e12,
    "throughput_source": "assumed",
}


def record(**changes):
    return {
        "cpu_seconds": 38.4,
        "wall_seconds": 21.04,
        "cores": 2,
        "profile": "quick",
        "recorded_at": 1000.0,
        **changes,
    }


# --- the text ------------------------------------------------------------------------


def test_a_measurement_of_this_build_gives_the_cpu_time():
    measured = cost_box.measurement_for_this_build(record(), build_started=900.0)
    assert cost_box.quick_text(measured) == (
        "Quick profile, measured in this build: 38 s of CPU time (21 s wall clock) on this "
        "build's machine (2 CPU cores)."
    )
    short = record(cpu_seconds=2.46, wall_seconds=3.71, cores=1, profile="full")
    assert cost_box.quick_text(short) == (
        "Full profile, measured in this build: 2.5 s of CPU time (3.7 s wall clock) on this "
        "build's machine (1 CPU core)."
    )


def test_no_measurement_or_one_from_an_earlier_build_says_not_measured():
    assert cost_box.measurement_for_this_build(None, build_started=900.0) is None
    assert cost_box.measurement_for_this_build(record(), build_started=1001.0) is None
    text = cost_box.quick_text(None)
    assert text.startswith("In this build: not measured")
    assert not re.search(r"\d", text)  # no stale number


def test_the_gpu_estimate_sentence():
    chapter = {
        "gpu_memory_gb": 1.78,
        "gpu_hours": 0.4288,
        "fits_free_colab": True,
        "what_runs": "one p = 65 teacher",
        "drivers": [],
    }
    assert cost_box.gpu_text(chapter, ASSUMPTIONS) == (
        "Full profile on a T4 GPU: about 26 min of computation and 1.8 GB of GPU memory for "
        "one p = 65 teacher. Fits a free Colab session. Estimated from the FLOPs and "
        "activations measured by `benchmarks/bench_full_costs.py`, at 8 TFLOPS sustained: "
        "assumed."
    )
    short = {**chapter, "gpu_hours": 0.05, "fits_free_colab": False}
    text = cost_box.gpu_text(short, ASSUMPTIONS)
    assert "about 3 min of computation" in text and "reading and augmenting" in text
    assert "Does not fit a free Colab session" in text
    assert cost_box.gpu_text({**chapter, "gpu_memory_gb": 0.0}, ASSUMPTIONS) == (
        "Full profile: needs no GPU (one p = 65 teacher)."
    )


def test_durations():
    assert cost_box.duration_text(0.0) == "under a minute"
    assert cost_box.duration_text(0.5) == "about 30 min"
    assert cost_box.duration_text(2.07) == "about 2.1 h"


def test_the_committed_estimates_in_the_box():
    ch5 = cost_box.chapter_costs(COSTS, "05_uninformed_students")
    text = cost_box.gpu_text(ch5, COSTS["assumptions"])
    assert "about 2.1 h of computation (about 71 min with cached teachers)" in text
    assert "6.9 GB" in text and "the paper's 100 epochs would take about 7.8 h" in text
    assert "8 TFLOPS" in text and "NVIDIA's T4 datasheet" in text


def test_an_unknown_chapter_or_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(cost_box.CostBoxError, match="'99_new'.*bench_full_costs.py"):
        cost_box.chapter_costs(COSTS, "99_new")
    with pytest.raises(cost_box.CostBoxError, match="missing.*bench_full_costs.py"):
        cost_box.load_costs(tmp_path / "nothing.json")


def test_inline_code_spans():
    parts = cost_box.inline("`EPOCHS`: 20 (quick)")
    assert [type(p).__name__ for p in parts] == ["literal", "Text"]
    assert parts[0].astext() == "EPOCHS"


# --- the chapters and the data -------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_has_exactly_one_cost_box_after_its_learning_goals(path):
    cells = nbformat.read(path, as_version=4).cells
    boxes = [i for i, c in enumerate(cells) if "```{cost-box}" in c.source]
    assert boxes == [0], "one cost box, in the title cell"
    title = cells[0].source
    assert title.index("What you will learn") < title.index("```{cost-box}")
    assert "**On a free Colab GPU**" not in title  # the hand-typed costs are gone
    assert path.stem in COSTS["chapters"], "the box needs the chapter's estimate"


def test_the_data_has_a_chapter_for_every_notebook_and_no_other():
    assert set(COSTS["chapters"]) == {p.stem for p in NOTEBOOKS}


def test_the_data_matches_the_profiles_and_assumptions():
    """A changed profile or assumption: rerun benchmarks/bench_full_costs.py."""
    import bench_full_costs as bench

    drivers = bench.cost_drivers()
    assert {k: c["drivers"] for k, c in COSTS["chapters"].items()} == drivers
    assert COSTS["assumptions"]["throughput_flops"] == bench.THROUGHPUT
    assert COSTS["assumptions"]["teacher_steps"] == bench.TEACHER_STEPS
    for name, row in COSTS["methods"].items():
        config = bench.resolved_settings(name, "full")
        assert (row["epochs"], row["batch_size"]) == (config.epochs, config.batch_size)


def test_setup_prose_agrees_with_the_data():
    setup = (REPO / "book" / "setup.md").read_text()
    assert "```{full-cost-table} methods" in setup and "```{full-cost-table} chapters" in setup
    us = COSTS["methods"]["uninformed_students"]
    assert f"costs {us['train_flops'] / 1e12:.1f} TFLOP per image" in setup
    paper = COSTS["chapters"]["05_uninformed_students"]["gpu_hours_paper_epochs"]
    assert f"about {paper['hours_teachers_cached']:.1f} hours on a T4" in setup
    memory = COSTS["chapters"]["05_uninformed_students"]["gpu_memory_gb"]
    assert f"{memory:.1f} GB of 16" in setup


def test_the_tables_come_from_the_data():
    methods = cost_box.methods_table(COSTS)
    assert "| STFPM | 5.6 M (2.8 M) | 14.3 | 7.3 | 30 MB | 32 | 100 |" in methods
    chapters = cost_box.chapters_table(COSTS)
    assert "| {doc}`/notebooks/03_descriptive_teacher` | one p = 65 teacher | 1.8 GB | " in chapters
    assert len(chapters.splitlines()) == 2 + len(NOTEBOOKS)


# --- a real build: a one-notebook Jupyter Book with the extension --------------------

CONFIG = """\
title: cost box test
only_build_toc_files: true
execute:
  execute_notebooks: {mode}
sphinx:
  local_extensions:
    cost_box: {ext}
  config:
    cost_box_data: {data}
"""
TOC = "format: jb-book\nroot: intro\nchapters:\n  - file: notebooks/06_stfpm\n"
BURN_TWO_CPU_SECONDS = (
    "import time\nstart = time.process_time()\nwhile time.process_time() - start < 2:\n    pass"
)


def build_tiny_book(folder: Path, mode: str) -> str:
    """Build a book of one chapter named like chapter 6; its page as text."""
    (folder / "notebooks").mkdir(parents=True)
    (folder / "_config.yml").write_text(
        CONFIG.format(mode=mode, ext=REPO / "book" / "_ext", data=COSTS_FILE)
    )
    (folder / "_toc.yml").write_text(TOC)
    (folder / "intro.md").write_text("# Intro\n\nA test book.\n")
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.metadata["language_info"] = {"name": "python"}  # the lexer, unexecuted too
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# 6. Tiny\n\n```{cost-box}\nJupyter's text.\n```"),
        nbformat.v4.new_code_cell(BURN_TWO_CPU_SECONDS),
    ]
    nbformat.write(notebook, folder / "notebooks" / "06_stfpm.ipynb")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    env = {**os.environ, "STAD_PROFILE": "quick"}
    result = subprocess.run(
        [str(jupyter_book), "build", str(folder), "-W", "-n", "--keep-going"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    page = (folder / "_build" / "html" / "notebooks" / "06_stfpm.html").read_text()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_a_built_page_shows_the_cpu_time_measured_in_its_build(tmp_path):
    text = build_tiny_book(tmp_path / "executed", "force")
    assert "What this chapter costs to run" in text and "Jupyter's text" not in text
    match = re.search(
        r"Quick profile, measured in this build: ([\d.,]+) s of CPU time "
        r"\(([\d.,]+) s wall clock\) on this build's machine \((\d+) CPU cores?\)",
        text,
    )
    assert match, text[:3000]
    cpu, wall = float(match[1]), float(match[2])
    assert cpu >= 2.0 and wall >= 2.0  # the cell alone burns 2 s of the kernel's CPU
    assert "1.6 GB of GPU memory for STFPM" in text
    assert "EPOCHS" in text and "20 (quick), 100 (full)" in text

    unexecuted = build_tiny_book(tmp_path / "off", "off")
    assert "In this build: not measured" in unexecuted
    assert "s of CPU time" not in unexecuted
