"""Command line: ``python -m stad_utils <command>`` (also installed as ``stad``).

Commands:
  fit        train a method on a dataset category, evaluate it, write DIR/report.json
  evaluate   re-evaluate a saved run
  data       generate the embedded textures dataset (idempotent)
  download   download MVTec AD (one category or all), resumable and checksummed
  bench      the benchmark sweep: methods × categories × seeds, one JSON per run,
             resumable and shardable (--shard i/n); --merge writes the results tables
  grade      grade a class's notebooks (runs the students' code: use a container)

Known errors (bad arguments or data, a full disk, a corrupt file, ...) print one message
and exit with status 2 (bad usage) or 1 (anything else); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import shlex
import sys
import traceback
from pathlib import Path

from .config import DEVICES, PROFILE_NAMES, data_root
from .errors import DiskFullError, StadError, UsageError
from .methods import METHODS


def _data(args: argparse.Namespace) -> int:
    from .data.textures import ensure_textures

    root = ensure_textures(args.root)
    print(f"textures dataset ready in {root}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from .data.download import download_mvtec

    print("MVTec AD is licensed CC BY-NC-SA 4.0: non-commercial use, with attribution.")
    root = download_mvtec(
        args.root, args.category, progress=not args.quiet, keep_archive=not args.remove_archive
    )
    print(f"MVTec AD ready in {root}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from .runner import RunConfig, run

    try:
        options = json.loads(args.method_options) if args.method_options else {}
    except json.JSONDecodeError as error:
        raise SystemExit(
            f"--method-options is not valid JSON ({error}); write it like "
            "'{\"num_students\": 3}' (keys in double quotes)."
        ) from error
    config = RunConfig(
        method=args.method,
        data=str(args.data),
        category=args.category,
        out=str(args.out),
        seed=args.seed,
        method_options=options,
        figures=not args.no_figures,
        **_run_settings(args),
    )
    try:
        report = run(
            config,
            overwrite=args.overwrite,
            threshold_rule=args.threshold_rule,
            false_alarm_rate=args.false_alarm_rate,
        )
    except KeyboardInterrupt:
        # the same command resumes from the last finished epoch; never with --overwrite,
        # which would delete that checkpoint
        again = [word for word in args.argv if word != "--overwrite"]
        print(
            f"\nInterrupted. The finished epochs are kept in {args.out / 'checkpoint'}; "
            f"resume with:\n  python -m stad_utils {shlex.join(again)}",
            file=sys.stderr,
        )
        return 130
    _print_report(report)
    print(f"Report, model and figures in {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .files import write_json
    from .runner import evaluate_run

    report = evaluate_run(
        args.run,
        args.data,
        args.category,
        args.device,
        threshold_rule=args.threshold_rule,
        false_alarm_rate=args.false_alarm_rate,
    )
    _print_report(report)
    if args.output:
        write_json(args.output, report)  # creates a missing folder; strict JSON
    return 0


def _comma_list(text: str | None, kind=str) -> list | None:
    if text is None:
        return None
    values = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return [kind(value) for value in values]
    except ValueError as error:
        raise SystemExit(f"Could not read {text!r} as a comma-separated list: {error}") from error


def _shard(text: str) -> tuple[int, int]:
    from .bench import parse_shard

    try:
        return parse_shard(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _merge(out: Path, figures: bool):
    """``bench.merge`` with its warnings printed as notes."""
    import warnings

    from .bench import merge

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = merge(out, figures=figures)
    for note in results.warnings:
        print(f"note: {note}")
    return results


def _bench(args: argparse.Namespace) -> int:
    from . import bench

    if args.merge:
        try:
            results = _merge(args.out, figures=not args.no_figures)
        except FileNotFoundError as error:
            raise SystemExit(str(error)) from error
        print(
            f"{len(results.runs)} runs merged into {args.out}/results.md, results.csv, "
            "summary.csv" + ("" if args.no_figures else " and figures/")
        )
        return 0
    try:
        options = json.loads(args.method_options) if args.method_options else {}
        if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
            raise ValueError("expected an object of objects")
    except ValueError as error:
        raise SystemExit(
            f"--method-options must be JSON per method ({error}), e.g. "
            '\'{"fvv": {"num_students": 5}}\'.'
        ) from error
    data = args.data if args.data is not None else bench.default_data_root(args.profile)
    try:
        sweep = bench.Sweep(
            data=str(data),
            out=str(args.out),
            methods=_comma_list(args.methods),
            categories=_comma_list(args.categories),
            seeds=_comma_list(args.seeds, int),
            method_options=options,
            keep_models=args.keep_models,
            **_run_settings(args),
        )
        jobs = bench.shard_jobs(sweep.jobs(), args.shard)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    _check_categories(Path(data), sweep.categories)
    if args.dry_run:
        for number, job in enumerate(jobs, start=1):
            status, detail = bench.job_status(job, sweep.run_config(job), sweep.runs_dir)
            print(
                f"[{number}/{len(jobs)}] {job.key}: {status}" + (f" ({detail})" if detail else "")
            )
        return 0
    try:
        report = bench.run_sweep(sweep, args.shard)
    except KeyboardInterrupt:
        print("\nInterrupted: finished runs are kept; run the same command again to resume.")
        return 130
    print(report.summary())
    if not args.no_merge and report.ran + report.skipped:
        results = _merge(args.out, figures=not args.no_figures)
        print(f"Merged {len(results.runs)} runs into {args.out}/results.md")
    return 0 if report.ok else 1


def _check_categories(data: Path, categories) -> None:
    """Every category given must be a dataset folder under ``data`` (checked before any
    job runs, and by --dry-run)."""
    from .data import categories as category_folders

    found = category_folders(data)
    missing = [c for c in categories or () if c not in found]
    if missing:
        raise UsageError(
            f"No category {', '.join(map(repr, missing))} in {data} (a category is a folder "
            f"with train/good inside). Found: {', '.join(found) or 'none'}."
        )


def _print_report(report: dict) -> None:
    from .runner import REPORT_KEYS

    for key in REPORT_KEYS:
        value = report[key]
        print(f"{key:26s} {value:.4f}" if isinstance(value, float) else f"{key:26s} {value}")
    if report.get("thresholds"):  # every rule, so an oracle is never taken for a deployable one
        print(f"threshold rule: {report['threshold_rule']} (all rules below)")
        for name, rule in report["thresholds"].items():
            print(
                f"  {name:26s} t = {rule['value']:.4g}  Dice {rule['dice']:.3f}  "
                f"false goods {rule['false_goods']}, false bads {rule['false_bads']}  "
                f"[{'oracle: reads test labels' if rule['uses_test_labels'] else 'no test labels'}]"
            )


def _add_threshold_options(command: argparse.ArgumentParser) -> None:
    from .thresholds import RULES

    command.add_argument(
        "--threshold-rule",
        choices=list(RULES),
        default="image_f1_oracle",
        help="the threshold behind the report's threshold, dice and false goods/bads. "
        "image_f1_oracle (the thesis', eq. 5.6) and pixel_f1_oracle read the test labels; "
        "validation_quantile and validation_pixel_quantile use good validation images only. "
        "Every rule is recorded in the report's 'thresholds' (default: %(default)s)",
    )
    command.add_argument(
        "--false-alarm-rate",
        type=float,
        default=0.05,
        help="share of good images the validation_quantile rule may flag (default: 0.05)",
    )


def _setting_options() -> dict[str, dict]:
    """The run settings ``fit`` and ``bench`` share: RunConfig field → the keywords of its
    ``--option`` (every one defaults to ``None``: decided as ``RunConfig.create`` says)."""
    from .backbones import BACKBONES
    from .train import OPTIMIZERS

    return {
        "profile": dict(
            choices=[*PROFILE_NAMES, "auto"],
            help="where the settings left out come from (default: $STAD_PROFILE or auto)",
        ),
        "backbone": dict(choices=sorted(BACKBONES), help="teacher architecture"),
        "image_size": dict(type=int, help="square input size (pixels)"),
        "epochs": dict(type=int, help="training epochs"),
        "batch_size": dict(type=int, help="images per batch"),
        "lr": dict(
            type=float,
            help="learning rate of the method's optimizer (the optimizer comes from the "
            "method: Adam for Uninformed Students, SGD for the others)",
        ),
        "momentum": dict(type=float, help="SGD momentum (Adam ignores it)"),
        "weight_decay": dict(type=float, help="L2 weight decay of the optimizer"),
        "optimizer": dict(choices=OPTIMIZERS, help="replace the method's optimizer"),
        "device": dict(choices=DEVICES, help="compute device (default: cuda, then mps, then cpu)"),
    }


def _settings_parser() -> argparse.ArgumentParser:
    """The parent parser of ``fit`` and ``bench``: one option per run setting."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group(
        "run settings",
        "Left out, a setting is the profile's exception for the method, else the method's "
        "own, else the profile's.",
    )
    for name, keywords in _setting_options().items():
        group.add_argument(f"--{name.replace('_', '-')}", default=None, **keywords)
    return parent


def _run_settings(args: argparse.Namespace) -> dict:
    """The run settings of the command line, by RunConfig field name."""
    return {name: getattr(args, name) for name in _setting_options()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stad_utils",
        description="Student–Teacher Anomaly Detection: datasets, training and evaluation.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True)

    settings = _settings_parser()
    fit = commands.add_parser(
        "fit",
        parents=[settings],
        help="train and evaluate a method; writes report.json, model.pt and figures",
        description="Train METHOD on the good images of DATA/CATEGORY (MVTec AD layout: "
        "CATEGORY/train/good, CATEGORY/test/<kind>, CATEGORY/ground_truth/<kind>), select "
        "the epoch on a validation split of train/good, evaluate on the test split and "
        "write OUT/report.json, OUT/model.pt and OUT/figures/. Settings left out are "
        "decided as 'run settings' below says.",
    )
    fit.add_argument(
        "--method", required=True, choices=sorted(METHODS), help="the detector to train"
    )
    fit.add_argument(
        "--data",
        required=True,
        type=Path,
        help="dataset root holding the category folders (e.g. data/textures)",
    )
    fit.add_argument("--category", required=True, help="category folder (e.g. brick, carpet)")
    fit.add_argument("--out", required=True, type=Path, help="output folder of the run")
    fit.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of initialization, order, split (default: the profile's)",
    )
    fit.add_argument(
        "--method-options",
        default=None,
        help="extra method arguments as JSON, e.g. '{\"num_students\": 3}'",
    )
    fit.add_argument("--no-figures", action="store_true", help="do not write figures")
    fit.add_argument(
        "--overwrite",
        action="store_true",
        help="OUT holds another run: replace its model, report, figures and checkpoint "
        "(other files in OUT stay). Without it such a folder is refused.",
    )
    _add_threshold_options(fit)
    fit.set_defaults(handler=_fit)

    evaluate = commands.add_parser(
        "evaluate",
        help="re-evaluate a saved run",
        description="Load RUN/model.pt and evaluate it on the test "
        "split of its dataset (or of --data/--category).",
    )
    evaluate.add_argument("--run", required=True, type=Path, help="folder written by fit")
    evaluate.add_argument("--data", default=None, help="another dataset root")
    evaluate.add_argument("--category", default=None, help="another category")
    evaluate.add_argument("--device", choices=DEVICES, default=None)
    evaluate.add_argument("--output", default=None, help="write the report JSON here")
    _add_threshold_options(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    data = commands.add_parser("data", help="generate the embedded textures dataset")
    data.add_argument(
        "--root",
        type=Path,
        default=None,
        help="where to write it (default: DATA/textures, DATA = $STAD_DATA "
        "or the checkout's data/ folder)",
    )
    data.set_defaults(handler=_data)

    download = commands.add_parser("download", help="download MVTec AD (CC BY-NC-SA 4.0)")
    download.add_argument(
        "--category", default=None, help="one category (e.g. carpet); default: all 15"
    )
    download.add_argument(
        "--root", type=Path, default=None, help="target folder (default: DATA/mvtec)"
    )
    download.add_argument(
        "--remove-archive", action="store_true", help="delete the archive after extraction"
    )
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    download.set_defaults(handler=_download)

    bench = commands.add_parser(
        "bench",
        parents=[settings],
        help="benchmark sweep: methods × categories × seeds (resumable, shardable); --merge",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train and evaluate every METHOD on every CATEGORY with every SEED, one "
        "run at a time, writing OUT/runs/<method>__<category>__seed<seed>.json (failures: "
        "<key>.error.json). Running the same command again skips finished runs, so an "
        "interrupted sweep resumes. At the end the runs are merged into OUT/results.md, "
        "OUT/results.csv, OUT/summary.csv and OUT/figures/.\n\n"
        "Several machines: give each the same sweep and its own --shard i/n (e.g. a SLURM "
        "array: --shard ${SLURM_ARRAY_TASK_ID}/8), copy their OUT/runs/ folders into one, "
        "then: python -m stad_utils bench --merge --out OUT\n\n"
        "Exit status 1 if a run failed, 130 if interrupted.",
    )
    bench.add_argument("--out", required=True, type=Path, help="output folder of the sweep")
    bench.add_argument(
        "--merge",
        action="store_true",
        help="only merge OUT/runs/*.json into the tables and figures (no training)",
    )
    bench.add_argument(
        "--data",
        type=Path,
        default=None,
        help="dataset root holding the category folders (default: the profile's: "
        "data/textures for quick, data/mvtec for full)",
    )
    bench.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated methods (default: all: {','.join(sorted(METHODS))})",
    )
    bench.add_argument(
        "--categories", default=None, help="comma-separated categories (default: all in --data)"
    )
    bench.add_argument(
        "--seeds",
        default=None,
        help="comma-separated seeds, e.g. 42,43,44 (default: the profile's)",
    )
    bench.add_argument(
        "--method-options",
        default=None,
        help='per-method arguments as JSON, e.g. \'{"fvv": {"num_students": 5}}\'',
    )
    bench.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="run only shard I of N (1-based): jobs I-1, I-1+N, … of the ordered list",
    )
    bench.add_argument(
        "--keep-models",
        action="store_true",
        help="keep each run's model.pt (and checkpoint) in OUT/models/<key>/",
    )
    bench.add_argument(
        "--dry-run",
        action="store_true",
        help="print the (shard's) jobs and whether each is done; run nothing",
    )
    bench.add_argument("--no-merge", action="store_true", help="do not merge after the sweep")
    bench.add_argument("--no-figures", action="store_true", help="merge without figures")
    bench.set_defaults(handler=_bench)

    from .grading.cli import add_grade_parser

    add_grade_parser(commands)
    for command in commands.choices.values():  # --debug after the command too; SUPPRESS
        command.add_argument(  # keeps one given before it
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )
    return parser


def _exit_status(error: BaseException) -> int | None:
    """2 for bad usage, 1 for other known errors, ``None`` for a bug (traceback)."""
    from .backbones import WeightsUnavailableError
    from .data.download import DownloadError
    from .train import DivergenceError

    if isinstance(error, UsageError | ValueError):
        return 2
    known = (StadError, OSError, DownloadError, WeightsUnavailableError, DivergenceError)
    return 1 if isinstance(error, known) else None


def _message(error: BaseException) -> str:
    if isinstance(error, DiskFullError):
        return error.strerror
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"Disk full while writing {error.filename}: free some space and run again."
    return str(error)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if getattr(args, "root", None) is None and args.command == "download":
        args.root = data_root() / "mvtec"
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except Exception as error:
        status = _exit_status(error)
        if status is None:
            raise  # not a known error: the traceback is what a bug report needs
        if args.debug:
            traceback.print_exc()
        print(f"error: {_message(error)}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
