"""The benchmark sweep: every method × category × seed, one JSON per run, then one table.

A sweep is a list of jobs (:func:`jobs`, in a fixed order); each job is one
:func:`stad_utils.runner.run` and leaves one file::

    OUT/runs/<method>__<category>__seed<seed>.json        the flat report + peak memory,
                                                          versions, configuration, job
    OUT/runs/<key>.error.json                             a run that raised (message, traceback)
    OUT/models/<key>/                                     model.pt, only with keep_models

and :func:`merge` turns whatever ``OUT/runs/`` holds into::

    OUT/results.md          means per method, per category, published numbers beside ours
    OUT/results.csv         one row per run
    OUT/summary.csv         per method × category: mean and std over seeds
    OUT/figures/per_category.png, OUT/figures/cost_accuracy.png

**Resuming.** A run's JSON is written atomically (a ``.tmp`` file, then ``os.replace``)
after the run, so it is either whole or absent. Starting the same sweep again skips every
job whose JSON parses and records the same job and configuration; it redoes jobs whose file
is corrupt, whose configuration changed (e.g. another ``--epochs``) and jobs that failed
before. An interrupted sweep therefore resumes by running the same command again.

**Sharding.** ``shard=(i, n)`` (``--shard i/n``, 1-based) takes jobs ``i-1, i-1+n, …`` of
the ordered list: round-robin, so every shard gets a mix of methods and categories and the
n shards together hold every job exactly once. Every shard must be given the same sweep
(methods, categories, seeds; their order on the command line does not matter: the job
list is put in a canonical order). Shards write the same folder structure, so the results
of several machines are combined by copying their ``runs/`` folders into one and merging::

    # three Colab sessions (or machines), each with its own GPU:
    python -m stad_utils bench --profile full --out bench --shard 1/3     # session 1
    python -m stad_utils bench --profile full --out bench --shard 2/3     # session 2
    python -m stad_utils bench --profile full --out bench --shard 3/3     # session 3
    # copy the three bench/runs/ folders into one bench/runs/, then
    python -m stad_utils bench --merge --out bench

    # a SLURM job array (sbatch --array=1-8):
    python -m stad_utils bench --out bench --shard ${SLURM_ARRAY_TASK_ID}/8

The merged tables do not depend on how the runs were split: they are computed from the
run files alone, in a fixed order, without timestamps or paths.

**Peak memory** (``peak_memory_mb``, MiB) depends on the device: on CUDA the largest
allocation of the run (``torch.cuda.max_memory_allocated`` after resetting the peak); on
Apple MPS the memory the driver holds after the run (MPS keeps no peak); on the CPU the
peak resident set size of the whole *process* since it started (``resource.getrusage``),
so within one sweep a run never reports less than the runs before it; ``None`` where the
``resource`` module is missing (Windows).
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import shutil
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__, runner
from ..config import data_root, get_profile, pick_device
from ..data import TEXTURE_CATEGORIES, ensure_textures
from ..data import categories as category_folders
from ..files import json_text, write_atomically
from ..methods import METHODS
from ..published import CATEGORY_ORDER, SOURCES, published_for
from ..runner import REPORT_KEYS, RunConfig
from ..tables import MISSING, Column, markdown_table, metric_columns

__all__ = [
    "BOOK_ORDER",
    "BenchJob",
    "Sweep",
    "SweepReport",
    "BenchResults",
    "jobs",
    "method_names",
    "parse_shard",
    "shard_jobs",
    "job_status",
    "run_sweep",
    "merge",
    "collect",
    "results_markdown",
    "overall_table",
    "per_category_table",
    "published_beside_table",
    "save_figures",
    "published_beside",
    "peak_memory_mb",
    "default_data_root",
]

#: The methods in the order the book presents them; others follow alphabetically.
BOOK_ORDER = ("uninformed_students", "stfpm", "fvv", "simple_student")

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
#: fitted on good validation images only (``runner.label_free_numbers``).
RESULT_KEYS = ("key", *REPORT_KEYS, *LABEL_FREE_KEYS, "peak_memory_mb")

#: Configuration fields that do not change a run's result (so not compared on resume).
_NOT_COMPARED = ("data", "out", "figures", "device")

SHARD_HELP = "--shard must look like 2/3 with 1 ≤ i ≤ n"


# ----------------------------------------------------------------------------------------
# Jobs
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchJob:
    """One run of the sweep: a method on a category with a seed."""

    method: str
    category: str
    seed: int

    @property
    def key(self) -> str:
        """The run's file name without ``.json``, e.g. ``stfpm__brick__seed42``."""
        return f"{self.method}__{self.category}__seed{self.seed}"

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "category": self.category,
            "seed": self.seed,
            "key": self.key,
        }

    def describe(self) -> str:
        return f"{self.method} {self.category} seed {self.seed}"


def _method_rank(name: str) -> tuple:
    return (BOOK_ORDER.index(name), "") if name in BOOK_ORDER else (len(BOOK_ORDER), name)


def _category_rank(name: str) -> tuple:
    """MVTec AD's order, then the textures dataset's, then alphabetical."""
    if name in CATEGORY_ORDER:
        return (0, CATEGORY_ORDER.index(name), "")
    if name in TEXTURE_CATEGORIES:
        return (1, TEXTURE_CATEGORIES.index(name), "")
    return (2, 0, name)


def _unique(values: Iterable) -> list:
    return list(dict.fromkeys(values))


def method_names(methods: Iterable[str] | None = None) -> list[str]:
    """The given methods (default: every registered one not starting with ``_``), checked
    and put in book order (:data:`BOOK_ORDER`), the others alphabetically after them."""
    if methods is None:
        methods = [name for name in METHODS if not name.startswith("_")]
    methods = _unique(methods)
    unknown = [name for name in methods if name not in METHODS]
    if unknown:
        raise ValueError(
            f"Unknown method(s) {', '.join(map(repr, unknown))}: choose from "
            f"{', '.join(sorted(METHODS))}."
        )
    return sorted(methods, key=_method_rank)


def default_data_root(profile: str | None = None) -> Path:
    """The profile's dataset root: the embedded textures (generated if needed) for
    ``quick``, ``DATA/mvtec`` for ``full`` (download it first: ``python -m stad_utils
    download``)."""
    chosen = get_profile(profile)
    if chosen.dataset == "textures":
        return ensure_textures()
    return data_root() / "mvtec"


def jobs(
    methods: Iterable[str] | None = None,
    categories: Iterable[str] | None = None,
    seeds: Iterable[int] | None = None,
    *,
    data: str | Path | None = None,
    profile: str | None = None,
) -> list[BenchJob]:
    """The sweep's jobs, methods × categories × seeds, in a canonical order.

    Methods default to every registered method (book order), categories to every category
    folder of ``data`` (MVTec order, then the textures', then alphabetical), seeds to the
    profile's seed. The order is method, then category, then seed, whatever order the
    arguments come in, so that shards computed on different machines agree.
    """
    names = method_names(methods)
    if categories is None:
        if data is None:
            raise ValueError("Give the categories or the dataset root to find them in.")
        categories = category_folders(data)
        if not categories:
            raise ValueError(
                f"No category folders (CATEGORY/train/good) under {data}: give --data the "
                "dataset root, e.g. data/textures or data/mvtec."
            )
    cats = sorted(_unique(str(c) for c in categories), key=_category_rank)
    seed_list = sorted(_unique(int(s) for s in seeds)) if seeds else [get_profile(profile).seed]
    if not names or not cats:
        raise ValueError("A sweep needs at least one method and one category.")
    return [BenchJob(m, c, s) for m in names for c in cats for s in seed_list]


def parse_shard(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"2/3"`` → ``(2, 3)``; ``None`` → ``None`` (no sharding). Raises ``ValueError``
    with :data:`SHARD_HELP` unless it is ``i/n`` with 1 ≤ i ≤ n."""
    if text is None:
        return None
    if isinstance(text, tuple):
        index, count = text
    else:
        parts = str(text).strip().split("/")
        try:
            index, count = (int(part) for part in parts)
        except ValueError:
            raise ValueError(f"{SHARD_HELP}; got {text!r}.") from None
    if not 1 <= index <= count:
        raise ValueError(f"{SHARD_HELP}; got {text!r}.")
    return index, count


def shard_jobs(all_jobs: list[BenchJob], shard: str | tuple[int, int] | None) -> list[BenchJob]:
    """Shard ``i/n`` of the job list: every n-th job starting at index i-1 (round-robin)."""
    parsed = parse_shard(shard)
    if parsed is None:
        return list(all_jobs)
    index, count = parsed
    return list(all_jobs[index - 1 :: count])


# ----------------------------------------------------------------------------------------
# The sweep
# ----------------------------------------------------------------------------------------


#: RunConfig fields a sweep decides per job (``method``, ``category``, ``seed``) or for
#: the whole sweep (the rest); every other field is a setting it applies to every job.
_NOT_SWEEP_SETTINGS = ("method", "category", "seed", "data", "out", "figures", "method_options")


def sweep_settings() -> tuple[str, ...]:
    """The :class:`RunConfig` settings a sweep applies to every job, as ``fit`` does to
    its run (profile, backbone, image size, the training settings, device)."""
    return tuple(f.name for f in fields(RunConfig) if f.name not in _NOT_SWEEP_SETTINGS)


class Sweep:
    """A benchmark sweep: what to run (``None`` = default, see :func:`jobs`), where, and
    the settings of every run: any of :func:`sweep_settings` (``profile``, ``epochs``,
    ``lr``, ``weight_decay``, ...; left out = decided as for ``fit``, see
    :meth:`RunConfig.create`). ``method_options`` is per method:
    ``{"fvv": {"num_students": 5}}``."""

    def __init__(
        self,
        data: str | Path,
        out: str | Path,
        methods: tuple[str, ...] | None = None,
        categories: tuple[str, ...] | None = None,
        seeds: tuple[int, ...] | None = None,
        *,
        method_options: dict[str, dict] | None = None,
        keep_models: bool = False,
        **settings,
    ):
        self.data, self.out = str(data), str(out)
        self.methods, self.categories, self.seeds = methods, categories, seeds
        self.method_options = dict(method_options or {})
        self.keep_models = keep_models
        unknown = sorted(set(settings) - set(sweep_settings()))
        if unknown:
            raise ValueError(
                f"A sweep has no setting {', '.join(map(repr, unknown))}: it takes "
                f"{', '.join(sweep_settings())}."
            )
        self.settings = settings
        unknown = [name for name in self.method_options if name not in METHODS]
        if unknown:
            raise ValueError(
                f"method_options names unknown method(s) {', '.join(map(repr, unknown))}: "
                f"use {', '.join(sorted(METHODS))}."
            )

    def __repr__(self) -> str:
        return f"Sweep({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    @property
    def profile(self) -> str | None:
        return self.settings.get("profile")

    @property
    def runs_dir(self) -> Path:
        return Path(self.out) / "runs"

    def jobs(self) -> list[BenchJob]:
        return jobs(self.methods, self.categories, self.seeds, data=self.data, profile=self.profile)

    def run_config(self, job: BenchJob) -> RunConfig:
        """The job's :class:`RunConfig`, resolved (every setting explicit)."""
        out = str(Path(self.out) / "models" / job.key) if self.keep_models else None
        return RunConfig.create(
            job.method,
            self.data,
            job.category,
            seed=job.seed,
            out=out,
            figures=False,
            method_options=dict(self.method_options.get(job.method, {})),
            **self.settings,
        )


def _compared(config: dict) -> dict:
    """The part of a configuration that defines the result, as JSON would give it back."""
    return json.loads(json.dumps({k: v for k, v in config.items() if k not in _NOT_COMPARED}))


def job_status(job: BenchJob, config: RunConfig, runs_dir: str | Path) -> tuple[str, str]:
    """``(status, detail)`` of a job in ``runs_dir``: ``"done"`` (finished with this
    configuration), ``"todo"``, ``"failed"`` (an error file, no result), ``"corrupt"``
    (a file that does not parse as a run) or ``"changed"`` (finished with another
    configuration)."""
    path = Path(runs_dir) / f"{job.key}.json"
    if not path.exists():
        error = Path(runs_dir) / f"{job.key}.error.json"
        return ("failed", _error_message(error)) if error.exists() else ("todo", "")
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or not all(k in record for k in ("job", "config")):
            raise ValueError("not a run record (no 'job' or 'config')")
    except (OSError, ValueError) as error:  # JSONDecodeError is a ValueError
        return "corrupt", f"{path.name} is unreadable ({error})"
    if record["job"] != job.to_dict():
        return "changed", f"{path.name} records another job ({record['job']})"
    recorded, wanted = _compared(record["config"]), _compared(asdict(config))
    if recorded != wanted:
        diff = ", ".join(
            f"{k}={recorded.get(k)!r}→{wanted.get(k)!r}"
            for k in sorted(set(recorded) | set(wanted))
            if recorded.get(k) != wanted.get(k)
        )
        return "changed", f"configuration changed: {diff}"
    return "done", ""


def _error_message(path: Path) -> str:
    try:
        return json.loads(path.read_text()).get("error", "")
    except (OSError, ValueError, AttributeError):
        return "(unreadable error file)"


def _write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` so that ``path`` is either the old file or the whole new one
    (strict JSON: a NaN, e.g. a diverged validation score, is written as null)."""
    text = json_text(payload)
    write_atomically(path, lambda temporary: temporary.write_text(text))


def _device_type(device: str | None) -> str:
    import torch

    if device:
        return torch.device(device.lower()).type  # "cuda:0" → "cuda"
    return pick_device(verbose=False).type  # the run's own automatic choice


def _reset_peak_memory(device_type: str) -> None:
    import torch

    if device_type == "cuda" and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device_type: str) -> float | None:
    """Peak memory in MiB as this module's docstring describes (``None`` if unknown)."""
    import torch

    if device_type == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    if device_type == "mps":
        allocated = getattr(getattr(torch, "mps", None), "driver_allocated_memory", None)
        return allocated() / 2**20 if allocated else None
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes / KiB


def _versions() -> dict:
    import numpy
    import torch

    return {
        "stad_utils": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


@dataclass
class SweepReport:
    """What :func:`run_sweep` did: the shard's jobs and which ran, were skipped or failed."""

    jobs: list[BenchJob]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = (
            f"{len(self.jobs)} jobs: {len(self.ran)} ran, {len(self.skipped)} skipped "
            f"(finished before), {len(self.failed)} failed"
        )
        for key, message in self.failed.items():
            text += f"\n  FAILED {key}: {message}"
        return text


def run_sweep(
    sweep: Sweep,
    shard: str | tuple[int, int] | None = None,
    run_fn: Callable[[RunConfig], dict] | None = None,
    log: Callable[[str], None] = print,
) -> SweepReport:
    """Run the jobs of ``sweep`` (or of one shard ``i/n``) that are not finished yet.

    ``run_fn`` runs one :class:`RunConfig` and returns its flat report (default
    :func:`stad_utils.runner.run`; tests pass a fake). A run that raises is recorded in
    ``runs/<key>.error.json`` and the sweep goes on; ``KeyboardInterrupt`` stops it, and the
    same call later resumes after the last finished job.
    """
    run_fn = run_fn or runner.run
    if shard is not None and sweep.categories is None:
        log(
            "note: the categories are the folders found under the data root; give every "
            "shard the same --categories so that all machines split the same job list"
        )
    todo = shard_jobs(sweep.jobs(), shard)
    report = SweepReport(jobs=todo)
    runs = sweep.runs_dir
    runs.mkdir(parents=True, exist_ok=True)
    for number, job in enumerate(todo, start=1):
        prefix = f"[{number}/{len(todo)}] {job.describe()}"
        config = sweep.run_config(job)
        status, detail = job_status(job, config, runs)
        if status == "done":
            report.skipped.append(job.key)
            log(f"{prefix}: skipped (finished)")
            continue
        if status in ("corrupt", "changed"):
            log(f"{prefix}: redoing ({detail})")
            (runs / f"{job.key}.json").unlink(missing_ok=True)
        if status == "changed" and config.out:
            # the kept model's checkpoint belongs to the old configuration: start afresh
            # (an interrupted run of the *same* configuration keeps it, and resumes)
            shutil.rmtree(Path(config.out) / "checkpoint", ignore_errors=True)
            (Path(config.out) / "report.json").unlink(missing_ok=True)  # the old run's
        elif status == "failed":
            log(f"{prefix}: retrying (failed before: {detail})")
        else:
            log(f"{prefix}: running")
        device_type = _device_type(config.device)
        _reset_peak_memory(device_type)
        started = time.perf_counter()
        try:
            result = run_fn(config)
        except Exception as error:  # the sweep goes on; KeyboardInterrupt stops it
            message = f"{type(error).__name__}: {error}"
            _write_json(
                runs / f"{job.key}.error.json",
                {
                    "job": job.to_dict(),
                    "error": message,
                    "traceback": traceback.format_exc(),
                    "config": asdict(config),
                    "versions": _versions(),
                    "finished_at": _now(),
                },
            )
            report.failed[job.key] = message
            log(f"{prefix}: FAILED ({message})")
            continue
        seconds = time.perf_counter() - started
        record = dict(result)
        if record.get("peak_memory_mb") is None:  # a run function may measure its own
            record["peak_memory_mb"] = peak_memory_mb(record.get("device") or device_type)
        record.setdefault("device", device_type)
        record.setdefault("profile", config.profile)
        record["versions"] = {**_versions(), **(record.get("versions") or {})}
        record["config"] = asdict(config)
        record["job"] = job.to_dict()
        # A run's whole time: a run loaded from the store of trained models or resumed after
        # an interruption reports its own (``run_seconds``, earlier sessions' training
        # included). Without it, a resumed run adds its earlier sessions' training to this
        # session's wall time, so that it is never shorter than train_seconds.
        history = record.get("history") or {}
        resumed_from = history.get("resumed_from_epoch")
        earlier = (history.get("seconds") or 0.0) - (history.get("session_seconds") or 0.0)
        record["resumed_from_epoch"] = resumed_from
        record["session_wall_seconds"] = seconds
        record["wall_seconds"] = record.get("run_seconds") or (
            seconds + (max(earlier, 0.0) if resumed_from else 0.0)
        )
        record["finished_at"] = _now()
        _write_json(runs / f"{job.key}.json", record)
        (runs / f"{job.key}.error.json").unlink(missing_ok=True)
        report.ran.append(job.key)
        au_pro = record.get("au_pro")
        log(
            f"{prefix}: done in {seconds:.1f} s"
            + (f", AU-PRO {au_pro:.3f}" if isinstance(au_pro, int | float) else "")
        )
    return report


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------------------
# Merging
# ----------------------------------------------------------------------------------------


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
        return _unique(row["method"] for row in self.summary)

    @property
    def categories(self) -> list[str]:
        return sorted(_unique(row["category"] for row in self.summary), key=_category_rank)

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
            _method_rank(item[2].method),
            _category_rank(item[2].category),
            item[2].seed,
        ),
    )
    records = [record for _, record, _ in ordered]
    profiles = sorted(_unique(str(r.get("profile")) for r in records))
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
    for method in _unique(row["method"] for row in summary):
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


def save_figures(results: BenchResults, folder: str | Path) -> dict[str, Path]:
    """``per_category.png`` (AU-PRO per category and method, std over seeds as error bars)
    and ``cost_accuracy.png`` (training seconds against mean AU-PRO) in ``folder``."""
    from ..viz.style import pyplot_for_files

    plt = pyplot_for_files()
    from ..viz.comparison import plot_cost_accuracy, plot_per_category

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    values = {m: {} for m in results.methods}
    errors = {m: {} for m in results.methods}
    for row in results.summary:
        values[row["method"]][row["category"]] = row["au_pro_mean"]
        errors[row["method"]][row["category"]] = row["au_pro_std"]
    figures = {
        "per_category.png": plot_per_category(values, errors, ylabel="AU-PRO (FPR ≤ 0.3)"),
        "cost_accuracy.png": plot_cost_accuracy({row["method"]: row for row in results.overall}),
    }
    paths = {}
    for name, figure in figures.items():
        paths[name] = folder / name
        figure.savefig(paths[name], bbox_inches="tight")
        plt.close(figure)
    return paths


# ----------------------------------------------------------------------------------------
# Published numbers and the Markdown report
# ----------------------------------------------------------------------------------------


def _source_key(source: str) -> str:
    return next((key for key, text in SOURCES.items() if source.startswith(text)), source)


def published_beside(results: BenchResults) -> list[dict]:
    """Our mean beside every published number for the same method, category and metric:
    rows ``{method, category, metric, ours, published, source}`` where ``source`` is a
    key of :data:`stad_utils.published.SOURCES` (``THESIS``, ``ANOMALIB``, ``US_PRO``)
    with its detail, e.g. ``ANOMALIB, ResNet-18``, and ``source_key`` the bare key.
    Empty when no category matches."""
    rows = []
    for entry in results.summary:
        for item in published_for(entry["method"], entry["category"]):
            key = _source_key(item["source"])
            detail = item["source"][len(SOURCES.get(key, "")) :].strip(" ()")
            rows.append(
                {
                    "method": entry["method"],
                    "category": entry["category"],
                    "metric": item["metric"],
                    "ours": entry.get(f"{item['metric']}_mean"),
                    "published": item["value"],
                    "source": f"{key}, {detail}" if detail else key,
                    "source_key": key,
                }
            )
    return rows


#: Table 9.1's columns: accuracy, the decisions at the oracle threshold (test labels,
#: thesis eq. 5.6) beside those at the label-free one (good validation images only), and
#: the costs.
OVERALL_COLUMNS = (
    Column("method", align="left"),
    *(c for c in runner.COMPARISON_COLUMNS if c.key not in ("train_seconds", "parameters")),
    *metric_columns("train_seconds", "predict_seconds_per_image", "parameters", "peak_memory_mb"),
)

#: the metrics' titles in the report, the oracle's marked as such ("Dice (oracle t)")
_TITLES = {column.key: column.header for column in OVERALL_COLUMNS}


def _mean_std(mean, std, fmt: str = "{:.3f}") -> str:
    if mean is None:
        return MISSING
    return fmt.format(mean) + ("" if std is None else f" ± {fmt.format(std)}")


def _listing(values: list) -> str:
    return ", ".join(str(v) for v in values)


def overall_table(results: BenchResults) -> str:
    """The Markdown table of means per method (over categories, each the mean of its
    seeds): accuracy, decisions at the oracle and at the label-free threshold, time,
    parameters and peak memory."""
    return markdown_table(results.overall, OVERALL_COLUMNS)


def per_category_table(results: BenchResults) -> str:
    """The Markdown table of image AUROC, AU-PRO and Dice at the oracle and at the
    label-free threshold per category and method (mean ± std over seeds), with the
    published numbers beside them where there are some."""
    per_metric = {}
    for row in published_beside(results):
        per_metric.setdefault((row["method"], row["category"], row["metric"]), []).append(
            f"{row['published']:.3f} ({row['source']})"
        )
    columns = [Column("category", align="left"), Column("method", align="left"), Column("seeds")]
    for metric in ("image_auroc", "au_pro"):
        columns.append(Column(metric, _TITLES[metric]))
        if any(key[2] == metric for key in per_metric):
            columns.append(Column(f"published_{metric}", f"published {columns[-1].header}"))
    columns += [
        Column("dice", _TITLES["dice"]),
        Column("label_free_dice", _TITLES["label_free_dice"]),
    ]
    rows = []
    for category in results.categories:
        for method in results.methods:
            entry = next(
                (r for r in results.summary if r["method"] == method and r["category"] == category),
                None,
            )
            if entry is None:
                continue
            row = {"category": category, "method": method, "seeds": entry["seeds"]}
            for metric in ("image_auroc", "au_pro", "dice", "label_free_dice"):
                row[metric] = _mean_std(entry[f"{metric}_mean"], entry[f"{metric}_std"])
                published = per_metric.get((method, category, metric), [MISSING])
                row[f"published_{metric}"] = "; ".join(published)
            rows.append(row)
    return markdown_table(rows, columns)


def published_beside_table(results: BenchResults) -> str:
    """:func:`published_beside` as a Markdown table followed by the list of its sources;
    an empty string when no published number matches the categories."""
    published = published_beside(results)
    if not published:
        return ""

    def number(row: dict, key: str) -> str:
        return Column(key, format="{:.3f}" if "auroc" in row["metric"] else "{:.3g}").show(row[key])

    rows = [
        {
            **row,
            "metric": _TITLES.get(row["metric"], row["metric"]),
            "ours": number(row, "ours"),
            "published": number(row, "published"),
        }
        for row in published
    ]
    columns = [Column(key, align="left") for key in ("method", "category", "metric")]
    columns += [Column("ours"), Column("published"), Column("source", align="left")]
    used = sorted(_unique(row["source_key"] for row in published))
    return (
        markdown_table(rows, columns)
        + "\n"
        + "\n".join(f"* `{key}`: {SOURCES[key]}" for key in used if key in SOURCES)
        + "\n"
    )


def results_markdown(results: BenchResults) -> str:
    """The Markdown report of a merged sweep (no timestamps, no paths)."""
    parts = ["# Benchmark results\n"]
    seeds = sorted(_unique(row["seed"] for row in results.runs))
    parts.append(
        f"{len(results.runs)} runs: {len(results.methods)} method(s) × "
        f"{len(results.categories)} categor{'y' if len(results.categories) == 1 else 'ies'} "
        f"({_listing(results.categories)}) × {len(seeds)} seed(s) ({_listing(seeds)}).\n"
    )
    settings = [
        {
            "method": method,
            **{key: _listing(value) for key, value in results.settings[method].items()},
        }
        for method in results.methods
    ]
    columns = [Column(key, align="left") for key in ("method", "profile", "backbone")]
    columns += [Column("image_size", "image size"), Column("epochs")]
    parts.append(markdown_table(settings, columns))

    parts.append("## Means over categories and seeds\n")
    parts.append(
        "Each category weighs the same (the mean of its seeds' mean). Dice and the false "
        "goods and bads are shown twice: at the oracle threshold (image-level F1-optimal on "
        "the test labels, thesis eq. 5.6: a best case) and at the label-free one (a quantile "
        "of the good validation images' scores: what a deployment could set). Peak memory "
        "is the device's (CPU: the process's peak resident set).\n"
    )
    parts.append(overall_table(results))

    published = published_beside(results)
    parts.append("## Per category\n")
    parts.append("Mean ± standard deviation over seeds (no ± with one seed).\n")
    parts.append(per_category_table(results))

    parts.append("## Published numbers beside ours\n")
    if published:
        parts.append(
            "Every published number for a method and category we ran, beside our mean. The "
            "sources measured in their own setting (MVTec AD; the thesis: ResNet-18, "
            "224×224, seed 42), which can differ from ours above.\n"
        )
        parts.append(published_beside_table(results))
    else:
        parts.append(
            "No published numbers match these categories: the sources report MVTec AD "
            f"categories only ({_listing(CATEGORY_ORDER)}).\n"
        )
    if results.warnings:
        parts.append("## Notes\n")
        parts.append("\n".join(f"* {note}" for note in results.warnings) + "\n")
    return "\n".join(parts)
