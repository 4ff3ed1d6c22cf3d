"""Reading a sweep's run files and merging them: :func:`collect` → :class:`BenchResults`
(one row per run, means and standard deviations over seeds, means over categories);
:func:`merge` writes ``results.md``, ``results.csv``, ``summary.csv`` and the figures."""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .. import runner
from ..runner import REPORT_KEYS
from .joblist import BenchJob, category_rank, method_rank, unique
from .report import results_markdown, save_figures

#: Dice and false counts at the threshold fitted on good validation images only.
LABEL_FREE_KEYS = tuple(runner.label_free_numbers({}))

#: The metrics summarized per method × category (mean and std over seeds).
SUMMARY_METRICS = (
    "image_auroc",
    "pixel_auroc",
    "au_pro",
    "dice",
    "false_goods",
    "false_bads",
    *LABEL_FREE_KEYS,
    "train_seconds",
    "predict_seconds_per_image",
    "peak_memory_mb",
    "parameters",
)

#: One row per run in results.csv. ``dice``, ``false_goods``, ``false_bads`` are at the
#: oracle threshold (test labels, thesis eq. 5.6); the ``label_free_`` ones at the threshold
#: fitted on good validation images only (``runner.label_free_numbers``). ``wall_seconds``
#: is the run's whole time, earlier sessions' training included (``run_sweep``); ``None``
#: in a run file written without it.
RESULT_KEYS = ("key", *REPORT_KEYS, "wall_seconds", *LABEL_FREE_KEYS, "peak_memory_mb")


@dataclass
class BenchResults:
    """The merged sweep: ``runs`` (one flat row per run, :data:`RESULT_KEYS`), ``summary``
    (per method × category: ``seeds`` and ``<metric>_mean`` / ``<metric>_std`` for
    :data:`SUMMARY_METRICS`), ``overall`` (per method: means over categories of the
    per-category means), ``settings`` (per method: the profiles, backbones, image sizes,
    epochs and seeds of its runs), failed job keys and warnings."""

    runs: list[dict]
    summary: list[dict]
    overall: list[dict]
    settings: dict[str, dict]
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return unique(row["method"] for row in self.summary)

    @property
    def categories(self) -> list[str]:
        return sorted(unique(row["category"] for row in self.summary), key=category_rank)

    def cell(self, method: str, category: str, metric: str, stat: str = "mean"):
        """One summary value (``None`` if that method × category was not run)."""
        for row in self.summary:
            if row["method"] == method and row["category"] == category:
                return row.get(f"{metric}_{stat}")
        return None

    def markdown(self) -> str:
        return results_markdown(self)


def _mean(values: list) -> float | None:
    values = [float(v) for v in values if v is not None]
    return math.fsum(values) / len(values) if values else None


def _std(values: list) -> float | None:
    """Sample standard deviation (n - 1); ``None`` below two values."""
    values = [float(v) for v in values if v is not None]
    if len(values) < 2:
        return None
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _read_runs(runs_dir: Path) -> tuple[list[dict], list[str], list[str]]:
    """(records, failed keys, warnings) from ``runs_dir``, in a canonical order."""
    notes, by_key, failed = [], {}, []
    paths = sorted(runs_dir.glob("*.json")) if runs_dir.is_dir() else []
    for path in paths:
        if path.name.endswith(".error.json"):
            continue
        try:
            record = json.loads(path.read_text())
            job = BenchJob(**{k: record["job"][k] for k in ("method", "category", "seed")})
            # the deployable decisions, from the run's report (None in a run file written
            # before the label-free thresholds existed: shown as missing)
            for name, value in runner.label_free_numbers(record).items():
                record.setdefault(name, value)
        except (OSError, ValueError, KeyError, TypeError) as error:
            notes.append(f"{path.name} skipped: not a readable run ({type(error).__name__}).")
            continue
        if job.key in by_key:  # e.g. "x (1).json" after copying folders together
            canonical = path.name == f"{job.key}.json"
            notes.append(
                f"{job.key} is recorded twice; kept {path.name if canonical else by_key[job.key][0]}."
            )
            if not canonical:
                continue
        by_key[job.key] = (path.name, record, job)
    for path in paths:
        if path.name.endswith(".error.json"):
            key = path.name[: -len(".error.json")]
            if key not in by_key:
                failed.append(key)
    ordered = sorted(
        by_key.values(),
        key=lambda item: (
            method_rank(item[2].method),
            category_rank(item[2].category),
            item[2].seed,
        ),
    )
    records = [record for _, record, _ in ordered]
    profiles = sorted(unique(str(r.get("profile")) for r in records))
    if len(profiles) > 1:
        notes.append(f"Runs of different profiles are merged ({', '.join(profiles)}).")
    return records, sorted(failed), notes


def _settings(records: list[dict]) -> dict[str, dict]:
    settings = {}
    for record in records:
        config = record.get("config") or {}
        entry = settings.setdefault(
            record["job"]["method"],
            {"profile": [], "backbone": [], "image_size": [], "epochs": [], "seed": []},
        )
        for key in entry:
            value = record["job"]["seed"] if key == "seed" else config.get(key)
            if value not in entry[key]:
                entry[key].append(value)
    for entry in settings.values():
        for key in entry:
            entry[key] = sorted(entry[key], key=lambda v: (str(type(v)), v if v is not None else 0))
    return settings


def collect(out_dir: str | Path) -> BenchResults:
    """Read ``OUT/runs/*.json`` into :class:`BenchResults` (writes nothing)."""
    records, failed, notes = _read_runs(Path(out_dir) / "runs")
    runs = []
    for record in records:
        row = {key: record.get(key) for key in RESULT_KEYS}
        row.update({k: record["job"][k] for k in ("method", "category", "seed", "key")})
        runs.append(row)
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in runs:
        groups.setdefault((row["method"], row["category"]), []).append(row)
    summary = []
    for (method, category), rows in groups.items():
        entry = {"method": method, "category": category, "seeds": len(rows)}
        for metric in SUMMARY_METRICS:
            values = [row.get(metric) for row in rows]
            entry[f"{metric}_mean"] = _mean(values)
            entry[f"{metric}_std"] = _std(values)
        summary.append(entry)
    overall = []
    for method in unique(row["method"] for row in summary):
        rows = [row for row in summary if row["method"] == method]
        entry = {"method": method, "categories": len(rows), "runs": sum(r["seeds"] for r in rows)}
        for metric in SUMMARY_METRICS:
            entry[metric] = _mean([row[f"{metric}_mean"] for row in rows])
        overall.append(entry)
    if failed:
        notes.append(f"{len(failed)} run(s) failed and have no result: {', '.join(failed)}.")
    return BenchResults(runs, summary, overall, _settings(records), failed, notes)


def merge(out_dir: str | Path, figures: bool = True) -> BenchResults:
    """Merge ``OUT/runs/*.json`` into ``results.md``, ``results.csv``, ``summary.csv`` and
    (with ``figures``) ``figures/per_category.png`` and ``figures/cost_accuracy.png``.

    Error files are left out (and listed as failures); a run recorded twice or runs of
    different profiles give a warning. The files depend only on the run files' contents.
    """
    out = Path(out_dir)
    results = collect(out)
    for note in results.warnings:
        warnings.warn(note, stacklevel=2)
    if not results.runs:
        raise FileNotFoundError(f"No finished runs in {out / 'runs'}: run the sweep first.")
    (out / "results.md").write_text(results.markdown())
    _write_csv(out / "results.csv", RESULT_KEYS, results.runs)
    summary_keys = ("method", "category", "seeds") + tuple(
        f"{metric}_{stat}" for metric in SUMMARY_METRICS for stat in ("mean", "std")
    )
    _write_csv(out / "summary.csv", summary_keys, results.summary)
    if figures:
        save_figures(results, out / "figures")
    return results


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(float(value), ".6g")


def _write_csv(path: Path, keys: tuple[str, ...], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(keys)
    for row in rows:
        writer.writerow([_csv_value(row.get(key)) for key in keys])
    path.write_text(buffer.getvalue())
