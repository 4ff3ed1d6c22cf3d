"""How many torch threads, and how they wait, on an idle machine and beside a busy core.

    python benchmarks/bench_threads.py [--repeats 2]

PyTorch runs each CPU operation on a pool of OpenMP threads (2 here) that spin between
operations. Beside another busy process a spinning thread holds the core its partner
needs and every operation waits for the partner's time slice: chapter 3 took 556 s
instead of 40 s in such a rehearsal of ``make test``. This script times the same work in
fresh processes for each choice, idle and with a busy loop on one core, and prints
seconds and ratios against the idle default:

* **2 threads, spinning**: torch's default;
* **2 threads, sleeping**: ``OMP_WAIT_POLICY=PASSIVE`` (read when torch loads);
* **1 thread**;
* **stad_utils**: ``stad_utils.threads.use_idle_cores``, what training and prediction do:
  one thread per core the other processes leave idle.

The work: 15 steps of chapter 3's teacher pre-training (p = 33, small operations), one
dense pass of a p = 33 network over 8 images of 128² (large operations) and 10 training
steps of STFPM (EfficientNet-Lite0, batch 8 of 128², chapters 6–9). Printed, never
asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

WORK = r"""
import os, time, torch
if os.environ.get("BENCH_ADAPT"):
    from stad_utils.threads import use_idle_cores
    use_idle_cores("cpu")
elif os.environ.get("BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
from stad_utils.methods.patch_teacher import PatchTeacher
from stad_utils.data.patches import NATURAL_PHOTOS, TripletPatches, load_photos
from stad_utils.models import DenseExtractor, patch_network
torch.manual_seed(0)
def timed(work, repeats):
    work()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        work()
    return time.perf_counter() - started
teacher = PatchTeacher(33, backbone="efficientnet_lite0", target_size=64, width=0.25)
triplets = TripletPatches(33, load_photos(NATURAL_PHOTOS), length=64, seed=0)
batch = {k: torch.stack([triplets[i][k] for i in range(64)]) for k in ("anchor", "positive", "negative")}
optimizer = torch.optim.Adam(teacher.parameters(), lr=2e-4)
def step():
    optimizer.zero_grad()
    loss, _ = teacher.batch_loss(batch, torch.device("cpu"))
    loss.backward()
    optimizer.step()
small = timed(step, 15)
dense = DenseExtractor(patch_network(33, width=0.25, seed=0).eval())
images = torch.rand(8, 3, 128, 128)
with torch.no_grad():
    dense(images[:1])
    started = time.perf_counter()
    dense(images)
large = time.perf_counter() - started
from stad_utils.methods import METHODS
stfpm = METHODS["stfpm"](backbone="efficientnet_lite0")
student_optimizer = torch.optim.SGD([p for p in stfpm.parameters() if p.requires_grad], lr=0.4)
batch = torch.rand(8, 3, 128, 128).contiguous(memory_format=torch.channels_last)
stfpm.to(memory_format=torch.channels_last)
def student_step():
    student_optimizer.zero_grad()
    stfpm.loss(batch).backward()
    student_optimizer.step()
stfpm_seconds = timed(student_step, 10)
print(torch.get_num_threads(), small, large, stfpm_seconds)
"""


def measure(settings: dict[str, str]) -> tuple[float, ...]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "STAD_CPU_THREADS")}
    env.update(settings)
    output = subprocess.run(
        [sys.executable, "-c", WORK], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return tuple(float(value) for value in output[-4:])


def best_of(settings: dict[str, str], repeats: int) -> tuple[float, ...]:
    runs = [measure(settings) for _ in range(repeats)]
    return (runs[0][0], *(min(run[i] for run in runs) for i in (1, 2, 3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs each")
    args = parser.parse_args()
    policies = {
        "2 threads, spinning (torch's default)": {},
        "2 threads, sleeping (PASSIVE)": {"OMP_WAIT_POLICY": "PASSIVE"},
        "1 thread": {"BENCH_THREADS": "1"},
        "stad_utils (idle cores)": {"BENCH_ADAPT": "1"},
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
    base = rows[0][3:]
    print(f"{os.cpu_count()} CPUs; best of {args.repeats}; ×: against the idle default\n")
    print(
        "| machine | threads | used | 15 teacher steps s | × | dense 8×128² s | × "
        "| 10 STFPM steps s | × |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for load, name, used, *seconds in rows:
        cells = " | ".join(
            f"{value:.2f} | {value / reference:.2f}"
            for value, reference in zip(seconds, base, strict=True)
        )
        print(f"| {load} | {name} | {used:.0f} | {cells} |")


if __name__ == "__main__":
    main()
