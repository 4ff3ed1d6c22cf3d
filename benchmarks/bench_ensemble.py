"""The price of an ensemble: seconds per training epoch of Feature Vectors Variance with
M students against one STFPM student, same data, same machine, same run; plus the
networks and parameters each holds. Prints figures; asserts nothing.

    python benchmarks/bench_ensemble.py [--students 3] [--epochs 3] [--category brick]
"""

from __future__ import annotations

import argparse

import torch

from stad_utils.config import get_profile
from stad_utils.data import ensure_textures, load_splits
from stad_utils.runner import RunConfig


def seconds_per_epoch(method: str, options: dict, args, train_set) -> tuple[float, int]:
    config = RunConfig(
        method=method,
        data="",
        category=args.category,
        profile="quick",
        epochs=args.epochs,
        method_options=options,
    ).resolved()
    model = config.build_method()
    train = config.train_config(torch.device("cpu"))
    train.select_on_validation, train.progress = False, False
    history = model.fit(train_set, None, train)
    return history.seconds / args.epochs, model.parameter_count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--category", default="brick")
    args = parser.parse_args()
    profile = get_profile("quick")
    train_set, _, _ = load_splits(ensure_textures(), args.category, profile.image_size)
    stfpm, stfpm_params = seconds_per_epoch("stfpm", {}, args, train_set)
    fvv, fvv_params = seconds_per_epoch("fvv", {"num_students": args.students}, args, train_set)
    print(
        f"\n{len(train_set)} training images of {args.category}, {profile.image_size}² px, "
        f"backbone {profile.backbone}, batch {profile.batch_size}, "
        f"{torch.get_num_threads()} threads, mean of {args.epochs} epochs\n"
    )
    print("| method | networks held | parameters | s / epoch | ratio to STFPM |")
    print("|---|---:|---:|---:|---:|")
    print(f"| STFPM | 2 | {stfpm_params:,} | {stfpm:.2f} | 1.00 |")
    print(
        f"| FVV, M = {args.students} | {args.students + 1} | {fvv_params:,} | {fvv:.2f} | "
        f"{fvv / stfpm:.2f} |"
    )


if __name__ == "__main__":
    main()
