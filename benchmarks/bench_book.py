"""How long the book takes to execute, chapter by chapter, in the quick profile.

    python benchmarks/bench_book.py [--chapters 05,06] [--data DIR] [--keep]

Executes every chapter with papermill (as ``jupyter-book build`` and the notebook tests
do), in book order, twice:

* **cold**: a fresh data folder holding only the textures dataset, as after ``make data``
  on a fresh clone: no cached teachers, an empty store of trained models;
* **warm**: the same folder again, everything the cold pass trained now stored.

Prints a Markdown table per pass: wall seconds, the kernel's CPU seconds (user + system,
less sensitive than wall time to other processes on the machine) and the slowest cell,
then the totals. The budget (issue 14): the book ≤ 600 s, a chapter ≤ 120 s (chapter 9
≤ 180 s), no cell over a quarter of the cell timeout (``execute.timeout`` in
``_config.yml``, which this script uses too), on 2 idle cores.
The figures are printed, never asserted: time depends on the machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
CPU_MARK = "__kernel_cpu_seconds__"
# Appended to a copy of each chapter: the kernel's own CPU time (it runs one chapter).
CPU_CELL = (
    "import os as _os\n"
    "_t = _os.times()\n"
    f"print('{CPU_MARK}', _t.user + _t.system + _t.children_user + _t.children_system)"
)


def cell_timeout() -> int:
    """The book's per-cell timeout (``execute.timeout`` in ``_config.yml``)."""
    import yaml

    return int(yaml.safe_load((REPO / "_config.yml").read_text())["execute"]["timeout"])


BUDGET = {"book": 600, "chapter": 120, "09": 180, "cell": cell_timeout() // 4}


def _chapter_number(text: str) -> str:
    """``5`` → ``05``, ``2b`` → ``02b``: two digits, then any letter."""
    text = text.strip()
    digits = len(text) - len(text.lstrip("0123456789"))
    return text.zfill(len(text) + max(0, 2 - digits))


def chapter_names(selected: str | None) -> list[str]:
    # 02b (the interlude) sorts between 02 and 03, as in the book
    names = sorted(path.stem for path in NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))
    if selected:
        wanted = {_chapter_number(part) for part in selected.split(",")}
        names = [name for name in names if name.split("_")[0] in wanted]
    return names


def execute(name: str, work: Path) -> dict:
    """Run one chapter; its wall and kernel CPU seconds and its slowest cell."""
    import papermill

    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(CPU_CELL))
    source = work / f"{name}.source.ipynb"
    target = work / f"{name}.ipynb"
    nbformat.write(notebook, source)
    started = time.perf_counter()
    papermill.execute_notebook(
        str(source),
        str(target),
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=cell_timeout(),
    )
    wall = time.perf_counter() - started
    executed = nbformat.read(target, as_version=4)
    cpu = None
    # the mark and the number may arrive as two stream outputs: read them together
    text = "".join(output.get("text", "") for output in executed.cells[-1].get("outputs", []))
    if CPU_MARK in text:
        cpu = float(text.split(CPU_MARK)[1].split()[0])
    durations = [
        (cell.metadata.get("papermill", {}).get("duration") or 0.0, index)
        for index, cell in enumerate(executed.cells[:-1])
    ]
    slowest, cell_index = max(durations)
    return {"wall": wall, "cpu": cpu, "slowest_cell": slowest, "cell_index": cell_index}


def table(title: str, rows: dict[str, dict]) -> str:
    lines = [
        f"### {title}",
        "",
        "| chapter | wall s | kernel CPU s | slowest cell s (cell) | budget s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        budget = BUDGET.get(name[:2], BUDGET["chapter"])
        cpu = "–" if row["cpu"] is None else f"{row['cpu']:.0f}"
        lines.append(
            f"| {name} | {row['wall']:.0f} | {cpu} | {row['slowest_cell']:.0f} "
            f"({row['cell_index']}) | {budget} |"
        )
    wall = sum(row["wall"] for row in rows.values())
    cpu = sum(row["cpu"] or 0.0 for row in rows.values())
    lines.append(f"| **all** | **{wall:.0f}** | **{cpu:.0f}** | | {BUDGET['book']} |")
    return "\n".join(lines)


def fresh_data_folder(folder: Path) -> Path:
    """A data folder holding only the textures dataset (linked, not copied)."""
    from stad_utils.data import ensure_textures

    textures = ensure_textures()  # in the current data folder; generated if missing
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text("bench_book.py's data folder\n")
    if not (folder / textures.name).exists():
        (folder / textures.name).symlink_to(textures, target_is_directory=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", help="e.g. 05,06 (default: all)")
    parser.add_argument("--data", help="the data folder to use (default: a new temporary one)")
    parser.add_argument("--passes", default="cold,warm", help="cold, warm or cold,warm")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    os.environ["STAD_PROFILE"] = "quick"
    os.environ["STAD_HEADLESS"] = "1"
    os.environ.pop("MPLBACKEND", None)
    work = Path(args.data or tempfile.mkdtemp(prefix="bench_book_"))
    data = fresh_data_folder(work / "data") if not args.data else work
    os.environ["STAD_DATA"] = str(data)
    print(f"data folder {data}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")
    names = chapter_names(args.chapters)
    try:
        for name_of_pass in args.passes.split(","):
            out = work / f"executed_{name_of_pass}"
            out.mkdir(parents=True, exist_ok=True)
            rows = {}
            for name in names:
                rows[name] = execute(name, out)
                row = rows[name]
                print(
                    f"{name_of_pass} {name}: wall {row['wall']:.0f} s, CPU {row['cpu']:.0f} s, "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
            print(table(f"{name_of_pass} store", rows), flush=True)
    finally:
        if not args.keep and not args.data:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
