"""Channels-last against the default memory order for the patch networks on a CPU.

    python benchmarks/bench_layout.py [--repeats 3]

The patch networks of Uninformed Students (chapters 3 and 5) have few channels (32–128
at the quick profile's width 0.25) and run on many pixels. oneDNN's CPU convolutions
are faster when the channels of a pixel lie next to each other in memory (channels-last,
NHWC) than in PyTorch's default order (NCHW). ``stad_utils.models.cpu_fast_layout``
therefore puts their inputs in channels-last order on a CPU. This script measures, in one
run, both orders (``patch_networks.CHANNELS_LAST_ON_CPU`` switched off and on) for each
p at the quick profile's width:

* **dense**: one dense pass over 8 images of 128² (prediction, chapter 5);
* **teacher step**: one pre-training step on 64 triplets (chapter 3), the EfficientNet
  target included.

It prints the best of ``--repeats`` times and the speed-up. Figures only: nothing is
asserted.
"""

from __future__ import annotations

import argparse
import time

import torch

from stad_utils.data.patches import NATURAL_PHOTOS, TripletPatches, load_photos
from stad_utils.methods.patch_teacher import PatchTeacher
from stad_utils.models import DenseExtractor, patch_network, patch_networks

WIDTH = 0.25  # the quick profile's


def best_time(work, repeats: int) -> float:
    work()  # warm-up: oneDNN picks its kernels on the first call
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(p: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    dense = DenseExtractor(patch_network(p, width=WIDTH, seed=0).eval())
    images = torch.rand(8, 3, 128, 128)
    teacher = PatchTeacher(p, backbone="efficientnet_lite0", target_size=64, width=WIDTH)
    triplets = TripletPatches(p, load_photos(NATURAL_PHOTOS), length=64, seed=0)
    batch = {
        key: torch.stack([triplets[i][key] for i in range(64)])
        for key in ("anchor", "positive", "negative")
    }
    optimizer = torch.optim.Adam(teacher.parameters(), lr=2e-4)

    def predict():
        with torch.no_grad():
            dense(images)

    def step():
        optimizer.zero_grad()
        loss, _ = teacher.batch_loss(batch, torch.device("cpu"))
        loss.backward()
        optimizer.step()

    return {"dense": best_time(predict, repeats), "step": best_time(step, repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, width {WIDTH}\n")
    print(
        "| p | dense 8×128² NCHW ms | channels-last ms | speed-up "
        "| teacher step NCHW ms | channels-last ms | speed-up |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for p in (17, 33, 65):
        patch_networks.CHANNELS_LAST_ON_CPU = False
        default = measure(p, args.repeats)
        patch_networks.CHANNELS_LAST_ON_CPU = True
        fast = measure(p, args.repeats)
        print(
            f"| {p} | {1000 * default['dense']:.0f} | {1000 * fast['dense']:.0f} | "
            f"{default['dense'] / fast['dense']:.2f}× | {1000 * default['step']:.0f} | "
            f"{1000 * fast['step']:.0f} | {default['step'] / fast['step']:.2f}× |"
        )


if __name__ == "__main__":
    main()
