"""Running a sweep: :class:`Sweep` (what to run, where, with which settings),
:func:`job_status` (done, todo, failed, corrupt or changed) and :func:`run_sweep`, which
runs the unfinished jobs and writes one run file per job (see the package's docstring)."""

from __future__ import annotations

import json
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__, runner
from ..config import pick_device
from ..files import json_text, write_atomically
from ..methods import METHODS
from ..runner import RunConfig
from .joblist import BenchJob, jobs, shard_jobs

#: Configuration fields that do not change a run's result (so not compared on resume).
_NOT_COMPARED = ("data", "out", "figures", "device")


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


def device_type_of(device: str | None) -> str:
    import torch

    if device:
        return torch.device(device.lower()).type  # "cuda:0" → "cuda"
    return pick_device(verbose=False).type  # the run's own automatic choice


def _reset_peak_memory(device_type: str) -> None:
    import torch

    if device_type == "cuda" and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device_type: str) -> float | None:
    """Peak memory in MiB as ``stad_utils.bench``'s docstring describes (``None`` if unknown)."""
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
        device_type = device_type_of(config.device)
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
