"""Uninformed Students per scale: for each textures category in the quick profile, train the
method once (all three scales), then evaluate every scale alone and their mean (AU-PRO,
pixel and image AUROC) and time the scoring of one image per scale. Prints a Markdown
table; asserts nothing.

    python benchmarks/bench_us.py [--categories brick,grass,gravel] [--epochs N]

The scales are independent models, so evaluating a subset needs no retraining
(``method.use_scales``). Times are the median over the test images of one
``anomaly_map`` call per image (batch of 1) after a warm-up, in the current thread
count; the "all" time is the three scales together, i.e. the method's cost per image.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from stad_utils.data import TEXTURE_CATEGORIES, ensure_textures, load_splits
from stad_utils.metrics import evaluate
from stad_utils.runner import RunConfig, train_and_evaluate


def seconds_per_image(method, images: torch.Tensor) -> float:
    """Median seconds of one anomaly map, image by image (batch of 1)."""
    with torch.no_grad():
        method.anomaly_map(images[:1])  # warm-up
        times = []
        for image in images:
            started = time.perf_counter()
            method.anomaly_map(image[None])
            times.append(time.perf_counter() - started)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", default=",".join(TEXTURE_CATEGORIES))
    parser.add_argument("--epochs", type=int, default=None, help="default: the profile's (10)")
    parser.add_argument("--timed-images", type=int, default=8)
    args = parser.parse_args()
    root = ensure_textures()
    rows = []
    for category in args.categories.split(","):
        config = RunConfig(
            method="uninformed_students",
            data=str(root),
            category=category,
            profile="quick",
            epochs=args.epochs,
        ).resolved()
        train_set, val_set, test_set = load_splits(root, category, config.image_size, config.seed)
        # trained afresh (store=False): the benchmark reports the training time
        trained = train_and_evaluate(
            config, "cpu", store=False, splits=(train_set, val_set, test_set)
        )
        method, history = trained.method, trained.history
        masks, labels = test_set.masks(), test_set.labels
        images = torch.stack([test_set[i]["image"] for i in range(len(test_set))])
        for scales in [*((p,) for p in method.scales), method.scales]:
            method.use_scales = scales
            maps, scores = method.predict(images)
            report = evaluate(maps, masks, labels, scores)
            rows.append(
                (
                    category,
                    "all" if len(scales) > 1 else f"p = {scales[0]}",
                    report.image_auroc,
                    report.pixel_auroc,
                    report.au_pro,
                    seconds_per_image(method, images[: args.timed_images]),
                    history.seconds,
                )
            )
            print(rows[-1], flush=True)
    print(
        f"\nquick profile, {config.image_size}² px, {torch.get_num_threads()} threads, "
        f"{config.epochs} epochs, options {config.build_method().options}\n"
    )
    print("| category | scales | image AUROC | pixel AUROC | AU-PRO | ms / image | training s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for category, scales, image_auroc, pixel_auroc, au_pro, seconds, train_s in rows:
        print(
            f"| {category} | {scales} | {image_auroc:.3f} | {pixel_auroc:.3f} | {au_pro:.3f} "
            f"| {seconds * 1000:.0f} | {train_s:.1f} |"
        )
    for scales in dict.fromkeys(row[1] for row in rows):
        chosen = [row for row in rows if row[1] == scales]
        print(
            f"| mean | {scales} | {np.mean([r[2] for r in chosen]):.3f} | "
            f"{np.mean([r[3] for r in chosen]):.3f} | {np.mean([r[4] for r in chosen]):.3f} "
            f"| {np.mean([r[5] for r in chosen]) * 1000:.0f} | |"
        )


if __name__ == "__main__":
    main()
