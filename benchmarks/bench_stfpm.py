"""STFPM on every textures category in the quick profile: the metrics table and the
training throughput. Prints figures; asserts nothing.

    python benchmarks/bench_stfpm.py [--epochs N] [--out runs/bench_stfpm]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from stad_utils.data import TEXTURE_CATEGORIES, ensure_textures
from stad_utils.metrics import tabulate
from stad_utils.runner import RunConfig, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the quick profile's")
    parser.add_argument("--out", type=Path, default=None, help="keep each run's folder here")
    args = parser.parse_args()
    root = ensure_textures()
    reports = {}
    for category in TEXTURE_CATEGORIES:
        out = str(args.out / category) if args.out else None
        reports[category] = run(
            RunConfig(
                method="stfpm",
                data=str(root),
                category=category,
                out=out,
                profile="quick",
                epochs=args.epochs,
                figures=False,
            )
        )
    print(f"\nSTFPM, quick profile, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print(tabulate(reports))
    print("\n| category | train s | train images/s | predict s/image | parameters |")
    print("|---|---:|---:|---:|---:|")
    for category, r in reports.items():
        print(
            f"| {category} | {r['train_seconds']:.1f} | {r['train_images_per_second']:.1f} | "
            f"{r['predict_seconds_per_image']:.4f} | {r['parameters']:,} |"
        )


if __name__ == "__main__":
    main()
