"""STFPM, FVV, FVV variance-only and Simple Student on every textures category in the
quick profile, same data and seed: one comparison table per category and the mean.
Prints figures; asserts nothing.

    python benchmarks/bench_methods.py [--epochs N]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from stad_utils.config import pick_device
from stad_utils.data import TEXTURE_CATEGORIES, ensure_textures, load_splits
from stad_utils.runner import (
    COMPARISON_COLUMNS,
    RunConfig,
    comparison_table,
    evaluate_method,
    label_free_numbers,
    train_and_evaluate,
)


def reports_for(category: str, epochs: int | None) -> dict[str, dict]:
    root = str(ensure_textures())
    device = pick_device("cpu", verbose=False)
    reports = {}
    for label, method in (("STFPM", "stfpm"), ("FVV", "fvv"), ("Simple Student", "simple_student")):
        config = RunConfig(
            method=method, data=root, category=category, profile="quick", epochs=epochs
        ).resolved()
        train_set, val_set, test_set = load_splits(root, category, config.image_size, config.seed)
        # trained afresh (store=False): a benchmark measures the training, too
        trained = train_and_evaluate(
            config, device, store=False, splits=(train_set, val_set, test_set)
        )
        model, history, reports[label] = trained.method, trained.history, trained.report
        if method == "fvv":
            model.scoring = "variance"
            reports["FVV, variance only"] = evaluate_method(
                model, test_set, config, device, history, val_set
            )[0]
    order = ("STFPM", "FVV", "FVV, variance only", "Simple Student")
    return {name: reports[name] for name in order}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the quick profile's")
    args = parser.parse_args()
    per_category = {c: reports_for(c, args.epochs) for c in TEXTURE_CATEGORIES}
    print(f"\nquick profile, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for category, reports in per_category.items():
        print(f"\n### {category}\n")
        print(comparison_table(reports))
    print("\n### mean over categories\n")
    names = list(next(iter(per_category.values())))
    flat = {  # the label-free numbers sit in each report's thresholds: flatten them first
        c: {name: {**r, **label_free_numbers(r)} for name, r in reports.items()}
        for c, reports in per_category.items()
    }
    mean = {
        name: {
            column.key: float(np.mean([flat[c][name][column.key] for c in flat]))
            for column in COMPARISON_COLUMNS
            if all(flat[c][name].get(column.key) is not None for c in flat)
        }
        for name in names
    }
    for row in mean.values():
        row["parameters"] = int(row["parameters"])
    print(comparison_table(mean))


if __name__ == "__main__":
    main()
