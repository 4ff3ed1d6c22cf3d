"""How torch's CPU threads wait, on an idle machine and beside a busy core.

    python benchmarks/bench_threads.py [--repeats 3]

PyTorch runs each CPU operation on a pool of OpenMP threads (2 here). Between operations
the pool's threads *spin*, polling for the next one, unless ``OMP_WAIT_POLICY=PASSIVE``
makes them sleep. On an idle machine spinning saves the wake-up. But when another process
keeps one core busy, a spinning thread takes the core that its partner needs, every
operation waits for the partner's next time slice, and small operations (the patch
networks of chapters 3 and 5) get many times slower: chapter 3 took 556 s instead of 40 s
in such a rehearsal of ``make test``.

This script times the same work in fresh processes (the policy is read when torch loads)
for each policy, idle and with a busy loop on one core, and prints seconds and ratios
against the idle default. The work: 15 steps of chapter 3's teacher pre-training (p = 33,
small operations) and one dense pass of a p = 33 network over 8 images of 128² (large
operations). ``make`` and the tests set ``OMP_WAIT_POLICY=PASSIVE``; this script is the
measurement behind that choice. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

WORK = r"""
import time, torch
from stad_utils.methods.patch_teacher import PatchTeacher
from stad_utils.data.patches import NATURAL_PHOTOS, TripletPatches, load_photos
from stad_utils.models import DenseExtractor, patch_network
torch.manual_seed(0)
teacher = PatchTeacher(33, backbone="efficientnet_lite0", target_size=64, width=0.25)
triplets = TripletPatches(33, load_photos(NATURAL_PHOTOS), length=64, seed=0)
batch = {k: torch.stack([triplets[i][k] for i in range(64)]) for k in ("anchor", "positive", "negative")}
optimizer = torch.optim.Adam(teacher.parameters(), lr=2e-4)
def step():
    optimizer.zero_grad()
    loss, _ = teacher.batch_loss(batch, torch.device("cpu"))
    loss.backward()
    optimizer.step()
step()
started = time.perf_counter()
for _ in range(15):
    step()
small = time.perf_counter() - started
dense = DenseExtractor(patch_network(33, width=0.25, seed=0).eval())
images = torch.rand(8, 3, 128, 128)
with torch.no_grad():
    dense(images[:1])
    started = time.perf_counter()
    dense(images)
large = time.perf_counter() - started
print(small, large)
"""


def measure(settings: dict[str, str]) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(settings)
    output = subprocess.run(
        [sys.executable, "-c", WORK], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(output[-2]), float(output[-1])


def best_of(settings: dict[str, str], repeats: int) -> tuple[float, float]:
    runs = [measure(settings) for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs each")
    args = parser.parse_args()
    policies = {
        "default (spin)": {},
        "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
        "GOMP_SPINCOUNT=20000": {"GOMP_SPINCOUNT": "20000"},
        "GOMP_SPINCOUNT=200000": {"GOMP_SPINCOUNT": "200000"},
    }
    rows = []
    for load in ("idle", "one core busy"):
        busy = None
        if load != "idle":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.5)
        try:
            for name, policy in policies.items():
                rows.append((load, name, *best_of(policy, args.repeats)))
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    base_small, base_large = rows[0][2], rows[0][3]
    print(f"{os.cpu_count()} CPUs; best of {args.repeats}; ratios against idle default\n")
    print("| machine | threads wait | 15 teacher steps s | ratio | dense 8×128² s | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for load, name, small, large in rows:
        print(
            f"| {load} | {name} | {small:.2f} | {small / base_small:.2f} | "
            f"{large:.2f} | {large / base_large:.2f} |"
        )


if __name__ == "__main__":
    main()
