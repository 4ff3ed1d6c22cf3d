"""Command line: ``python -m stad_utils <command>`` (also installed as ``stad``).

Commands:
  fit        train a method on a dataset category, evaluate it, write DIR/report.json
  evaluate   re-evaluate a saved run
  data       generate the embedded textures dataset (idempotent)
  download   download MVTec AD (one category or all), resumable and checksummed
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import data_root
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
        profile=args.profile,
        backbone=args.backbone,
        image_size=args.image_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        method_options=options,
        figures=not args.no_figures,
    )
    report = run(config)
    _print_report(report)
    print(f"Report, model and figures in {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .runner import evaluate_run

    report = evaluate_run(args.run, args.data, args.category, args.device)
    _print_report(report)
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2))
    return 0


def _print_report(report: dict) -> None:
    from .runner import REPORT_KEYS

    for key in REPORT_KEYS:
        value = report[key]
        print(f"{key:26s} {value:.4f}" if isinstance(value, float) else f"{key:26s} {value}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stad_utils",
        description="Student–Teacher Anomaly Detection: datasets, training and evaluation.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser(
        "fit",
        help="train and evaluate a method; writes report.json, model.pt and figures",
        description="Train METHOD on the good images of DATA/CATEGORY (MVTec AD layout: "
        "CATEGORY/train/good, CATEGORY/test/<kind>, CATEGORY/ground_truth/<kind>), select "
        "the epoch on a validation split of train/good, evaluate on the test split and "
        "write OUT/report.json, OUT/model.pt and OUT/figures/. Options left out take the "
        "profile's value.",
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
        "--profile",
        choices=["quick", "full", "auto"],
        default=None,
        help="defaults for the options below (default: $STAD_PROFILE or auto)",
    )
    fit.add_argument(
        "--backbone",
        default=None,
        help="teacher architecture: resnet18, wide_resnet50_2, efficientnet_lite0",
    )
    fit.add_argument("--image-size", type=int, default=None, help="square input size (pixels)")
    fit.add_argument("--epochs", type=int, default=None, help="training epochs")
    fit.add_argument("--batch-size", type=int, default=None, help="images per batch")
    fit.add_argument("--lr", type=float, default=None, help="SGD learning rate")
    fit.add_argument("--seed", type=int, default=None, help="seed of initialization, order, split")
    fit.add_argument(
        "--device",
        choices=["cpu", "cuda", "mps"],
        default=None,
        help="compute device (default: cuda, then mps, then cpu)",
    )
    fit.add_argument(
        "--method-options",
        default=None,
        help="extra method arguments as JSON, e.g. '{\"num_students\": 3}'",
    )
    fit.add_argument("--no-figures", action="store_true", help="do not write figures")
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
    evaluate.add_argument("--device", choices=["cpu", "cuda", "mps"], default=None)
    evaluate.add_argument("--output", default=None, help="write the report JSON here")
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
        "--remove-archive", action="store_true", help="delete the 5 GB archive after extraction"
    )
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    download.set_defaults(handler=_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "root", None) is None and args.command == "download":
        args.root = data_root() / "mvtec"
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
