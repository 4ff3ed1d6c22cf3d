"""Command line: ``python -m stad_utils <command>`` (also installed as ``stad``).

Commands:
  data       generate the embedded textures dataset (idempotent)
  download   download MVTec AD (one category or all), resumable and checksummed
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import data_root


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stad_utils",
        description="Student–Teacher Anomaly Detection: datasets, training and evaluation.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="generate the embedded textures dataset")
    data.add_argument(
        "--root",
        type=Path,
        default=None,
        help="where to write it (default: DATA/textures, DATA = $STAD_DATA "
        "or the checkout's data/ folder)",
    )
    data.set_defaults(run=_data)

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
    download.set_defaults(run=_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "root", None) is None and args.command == "download":
        args.root = data_root() / "mvtec"
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
