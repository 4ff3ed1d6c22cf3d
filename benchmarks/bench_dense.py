"""Fast dense feature extraction against the patch-by-patch evaluation, p = 17, 33, 65.

Run:  python benchmarks/bench_dense.py [--size 256] [--p 17 33 65] [--naive-rows N]
                                       [--full-naive] [--batch-size 128]

For each receptive field ``p``, on one ``size × size`` RGB photo (scikit-image's
``astronaut``, resized) and a full-width patch network with random weights (the time
does not depend on the weights), the script measures in the same run:

* **dense**: ``DenseExtractor`` (multi-pooling + unwarping, one pass), all pixels;
* **naive**: ``naive_dense``, every p×p patch cut out and run through the network in
  batches of ``--batch-size``. At 256×256 and p = 65 that is 65,536 patches and several
  minutes, so by default only a band of rows in the middle of the image is computed
  (``--naive-rows``; 32 for p = 17 and 33, 8 for p = 65) and its time is **extrapolated
  linearly** to all rows (the cost is the same for every row: same patch count, batched).
  ``--full-naive`` computes every row instead. The table says which was done;
* **peak memory**: each measurement runs in a fresh subprocess (one at a time, never
  two torch processes at once). After imports, the network, the image and a small
  warm-up call, the process reads its peak resident size (``resource.getrusage``
  ``ru_maxrss``), runs the measured call once, and reads it again: the difference is the
  memory the call added at its peak (activations, outputs, PyTorch's CPU workspaces).
  ``tracemalloc`` cannot be used: it does not see PyTorch's allocations. The naive
  evaluation's peak does not grow with the number of rows (it is batched), apart from
  its output (``4 · 128 · rows · size`` bytes);
* **max |dense − naive|**: the largest absolute difference between the two outputs on
  the rows the naive evaluation computed.

Times are single wall-clock runs after a warm-up, with PyTorch's default threads; the
load average is printed because another busy process on the machine slows both. It
prints a Markdown table. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_NAIVE_ROWS = {17: 32, 33: 32, 65: 8}


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS)
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _photo(size: int):
    import numpy as np
    import torch
    import torch.nn.functional as F
    from skimage import data

    image = torch.from_numpy(data.astronaut().astype(np.float32) / 255.0).permute(2, 0, 1)
    return F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True)


def worker(args: argparse.Namespace) -> None:
    """One measurement in this (fresh) process; prints one JSON line."""
    import torch

    from stad_utils.models import DenseExtractor, naive_dense, patch_network

    p, size = args.p[0], args.size
    net = patch_network(p, seed=0).eval()
    image = _photo(size).clamp(0, 1)
    small = image[:, :, :40, :40].contiguous()
    with torch.inference_mode():
        if args.worker == "dense":
            extractor = DenseExtractor(net)
            extractor(small)  # warm-up
            before = _peak_rss_mb()
            start = time.perf_counter()
            out = extractor(image)
            seconds = time.perf_counter() - start
            rows = (0, size)
        else:
            naive_dense(net, small, batch_size=args.batch_size, rows=(0, 2))  # warm-up
            n = size if args.full_naive else min(size, args.naive_rows or DEFAULT_NAIVE_ROWS[p])
            r0 = (size - n) // 2
            rows = (r0, r0 + n)
            before = _peak_rss_mb()
            start = time.perf_counter()
            out = naive_dense(net, image, batch_size=args.batch_size, rows=rows)
            seconds = time.perf_counter() - start
        peak = _peak_rss_mb()
    torch.save(out, args.output)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_delta_mb": peak - before,
                "rows": rows,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            }
        )
    )


def run_worker(kind: str, p: int, args: argparse.Namespace, output: Path) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--p",
        str(p),
        "--size",
        str(args.size),
        "--batch-size",
        str(args.batch_size),
        "--output",
        str(output),
    ]
    if args.naive_rows:
        command += ["--naive-rows", str(args.naive_rows)]
    if args.full_naive:
        command.append("--full-naive")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker for p = {p} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="image side (default 256)")
    parser.add_argument("--p", type=int, nargs="+", default=[17, 33, 65])
    parser.add_argument(
        "--naive-rows",
        type=int,
        default=None,
        help="rows computed by the naive evaluation (default 32 for p = 17, 33; 8 for 65)",
    )
    parser.add_argument("--full-naive", action="store_true", help="naive on every row")
    parser.add_argument("--batch-size", type=int, default=128, help="naive patches per batch")
    parser.add_argument("--worker", choices=["dense", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return

    import torch

    print(
        f"Dense descriptors of a {args.size}×{args.size} image, full-width patch networks, "
        f"reflect padding; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start."
    )
    rows, extrapolated = [], False
    with tempfile.TemporaryDirectory() as tmp:
        for p in args.p:
            dense = run_worker("dense", p, args, Path(tmp) / "dense.pt")
            naive = run_worker("naive", p, args, Path(tmp) / "naive.pt")
            r0, r1 = naive["rows"]
            d = torch.load(Path(tmp) / "dense.pt")[:, :, r0:r1]
            n = torch.load(Path(tmp) / "naive.pt")
            diff = (d - n).abs().max().item()
            n_rows = r1 - r0
            naive_full = naive["seconds"] * args.size / n_rows
            extrapolated |= n_rows < args.size
            measured = (
                "all rows" if n_rows == args.size else f"{n_rows} rows, ×{args.size / n_rows:g}"
            )
            rows.append(
                f"| {p} | {dense['seconds']:.2f} | {naive_full:.1f} ({measured}) | "
                f"{naive_full / dense['seconds']:.0f}× | {dense['peak_delta_mb']:.0f} | "
                f"{naive['peak_delta_mb']:.0f} | {diff:.1e} |"
            )
            print(f"  p = {p} done", file=sys.stderr)
    print(f"torch {dense['torch']}, {dense['threads']} threads; naive batch {args.batch_size}.")
    print()
    print(
        "| p | dense (s) | naive (s) | speed-up | dense peak Δ RSS (MB) | "
        "naive peak Δ RSS (MB) | max abs diff |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if extrapolated:
        print()
        print(
            "Naive times marked 'N rows, ×k' were measured on N rows in the middle of the "
            "image and extrapolated linearly (× k) to all rows; the max abs diff is over "
            "those rows."
        )


if __name__ == "__main__":
    main()
