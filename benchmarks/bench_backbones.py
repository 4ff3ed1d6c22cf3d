"""Forward time, peak memory and size of each backbone, up to its stride-16 stage.

Run:  python benchmarks/bench_backbones.py [--quick] [--size 256] [--runs 11] [--threads 1]

For every backbone of ``stad_utils.backbones`` (random weights: the timing does not depend
on them, and torchvision's weights may be missing) cut after ``layer3`` (stride 16), the
script measures on the CPU, at ``size × size`` and for batches of 1 and 8:

* the forward time per image without gradients (the teacher's job), median and best of
  ``--runs`` runs after three warm-up runs, in the default (NCHW) and the channels-last
  memory layout. One thread by default: on a busy machine (the load average is printed)
  two threads wait for each other and the times scatter tenfold, while one-thread times
  stay stable; on an idle machine more threads divide them by up to their number;
* the peak memory per image of one forward pass (Linux only): how far the resident memory of
  a fresh process rises above its level just before the pass (the outputs, the transient
  activations and the first-call workspaces of PyTorch's CPU kernels);
* the parameters of the whole network and of the part that is run (up to stride 16).

It prints a Markdown table. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import time

import torch

from stad_utils.backbones import (
    BACKBONES,
    DEFAULT_LAYERS,
    available_backbones,
    build_backbone,
    count_parameters,
)

BATCHES = (1, 8)


def forward_seconds(net, images: torch.Tensor, runs: int, warmup: int = 3) -> list[float]:
    """Wall times of ``runs`` calls ``net(images)`` without gradients, after ``warmup`` calls.

    images: ``(B, 3, H, W)``.
    """
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            net(images)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times


def _resident_bytes(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from ``/proc/self/status``."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise KeyError(field)


def _forward_peak_child(name: str, batch: int, size: int, threads: int, queue) -> None:
    """In a fresh process: how far one forward pass raises the resident memory above its
    level just before (Linux: writing 5 to ``clear_refs`` resets the peak to the current level,
    so building the whole network first does not hide the forward pass's peak)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_backbone(name, pretrained=False, layers=DEFAULT_LAYERS).eval()
    images = torch.rand(batch, 3, size, size)
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        before = _resident_bytes("VmRSS")
    except OSError:  # not Linux
        queue.put(float("nan"))
        return
    with torch.inference_mode():
        net(images)
    queue.put(_resident_bytes("VmHWM") - before)


def forward_peak_bytes(name: str, batch: int, size: int) -> float:
    """Peak extra memory of one forward pass of ``name`` on ``(batch, 3, size, size)``."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    args = (name, batch, size, torch.get_num_threads(), queue)
    child = context.Process(target=_forward_peak_child, args=args)
    child.start()
    peak = queue.get()
    child.join()
    return peak


def measure(name: str, size: int, runs: int) -> list[dict]:
    """One row per batch size for backbone ``name``."""
    torch.manual_seed(0)
    net = build_backbone(name, pretrained=False, layers=DEFAULT_LAYERS).eval()
    whole = count_parameters(BACKBONES[name].make_network())
    rows = []
    for batch in BATCHES:
        images = torch.rand(batch, 3, size, size)
        nchw = forward_seconds(net, images, runs)
        last = net.to(memory_format=torch.channels_last)
        nhwc = forward_seconds(last, images.contiguous(memory_format=torch.channels_last), runs)
        net = net.to(memory_format=torch.contiguous_format)
        rows.append(
            {
                "backbone": name,
                "layers": ", ".join(f"{net.strides[k]}: {net.channels[k]}" for k in net.layers),
                "params_whole": whole,
                "params_run": count_parameters(net),
                "batch": batch,
                "ms_nchw": [1000 * t / batch for t in nchw],
                "ms_nhwc": [1000 * t / batch for t in nhwc],
                "mb_per_image": forward_peak_bytes(name, batch, size) / batch / 2**20,
            }
        )
    return rows


def _times(ms: list[float]) -> str:
    return f"{statistics.median(ms):.1f} ({min(ms):.1f})"


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| backbone | stride: channels | parameters (whole) | parameters (to stride 16) "
        "| batch | ms / image, median (best) | channels-last: ms / image, median (best) "
        "| peak MB / image |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backbone']} | {r['layers']} | {r['params_whole'] / 1e6:.2f} M "
            f"| {r['params_run'] / 1e6:.2f} M | {r['batch']} | {_times(r['ms_nchw'])} "
            f"| {_times(r['ms_nhwc'])} | {r['mb_per_image']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="image side (default 256)")
    parser.add_argument("--runs", type=int, default=11, help="timed runs per figure")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads")
    parser.add_argument("--quick", action="store_true", help="3 runs at 128 × 128")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size, runs = (128, 3) if args.quick else (args.size, args.runs)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"CPU: {platform.machine()}, {os.cpu_count()} cores, "
        f"PyTorch threads: {torch.get_num_threads()}"
        f" (load average {load}) | torch {torch.__version__} | images {size}×{size}"
        f" | median and best of {runs} runs after 3 warm-up runs\n"
    )
    rows = [row for name in available_backbones() for row in measure(name, size, runs)]
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
