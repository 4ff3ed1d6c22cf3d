"""AU-PRO at MVTec AD sizes: our exact algorithm against a 1,000-threshold sweep.

Run:  python benchmarks/bench_aupro.py [--quick]

Two synthetic test sets, float32 like a model's output:

* 150 maps of 256 × 256 (an MVTec AD category at the usual input size);
* 100 maps of 1024 × 1024 (MVTec AD's full resolution).

Half the images are defective, with 1–3 elliptic blobs of very different sizes as ground
truth; the anomaly maps are noise plus a smooth bump on each blob (some blobs faint), so
the detector is good but not perfect. For each set the script prints, for
``stad_utils.metrics.au_pro`` and for a straightforward sweep over 1,000 evenly spaced
thresholds, the time, the peak memory allocated during the call (tracemalloc; the input
maps themselves are not counted) and the AU-PRO, then their absolute difference.
Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from stad_utils.metrics import area_under_curve, au_pro, label_regions


def synthetic_test_set(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` maps (n, size, size) float32 and masks (n, size, size) uint8 with blob defects."""
    rng = np.random.default_rng(seed)
    maps = rng.standard_normal((n, size, size), dtype=np.float32)
    maps *= 0.3
    masks = np.zeros((n, size, size), dtype=np.uint8)
    for i in range(0, n, 2):  # every other image is defective
        for _ in range(rng.integers(1, 4)):
            radius = size * rng.choice([0.01, 0.04, 0.12]) * rng.uniform(0.7, 1.3, size=2)
            centre = rng.uniform(0.15, 0.85, size=2) * size
            strength = rng.uniform(0.3, 2.0)
            top = np.maximum((centre - 2 * radius).astype(int), 0)
            bottom = np.minimum((centre + 2 * radius).astype(int) + 1, size)
            yy, xx = np.mgrid[top[0] : bottom[0], top[1] : bottom[1]].astype(np.float32)
            d2 = ((yy - centre[0]) / radius[0]) ** 2 + ((xx - centre[1]) / radius[1]) ** 2
            masks[i, top[0] : bottom[0], top[1] : bottom[1]] |= (d2 <= 1).astype(np.uint8)
            maps[i, top[0] : bottom[0], top[1] : bottom[1]] += strength * np.exp(-d2 / 2)
    return maps, masks


def sweep_au_pro(maps, masks, n_thresholds: int = 1000, fpr_limit: float = 0.3) -> float:
    """The straightforward way: binarize at each of ``n_thresholds`` evenly spaced thresholds.

    For each threshold: FPR over the normal pixels, PRO = mean per-region overlap; then the
    trapezoid under those points (plus (0, 0) and (1, 1)) up to ``fpr_limit``.
    """
    regions, sizes = label_regions(masks)
    normal = regions == 0
    fpr, pro = [0.0], [0.0]
    for t in np.linspace(maps.max(), maps.min(), n_thresholds):
        predicted = maps >= t
        fpr.append(np.count_nonzero(predicted & normal) / sizes[0])
        hits = np.bincount(regions[predicted & ~normal], minlength=sizes.size)
        pro.append(float(np.mean(hits[1:] / sizes[1:])))
    fpr.append(1.0)
    pro.append(1.0)
    return area_under_curve(np.array(fpr), np.array(pro), fpr_limit) / fpr_limit


def measure(fn, *args):
    """(result, seconds, peak MiB allocated during the call)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    result = fn(*args)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the script")
    args = parser.parse_args()
    cases = [(150, 256), (100, 1024)] if not args.quick else [(20, 64), (10, 128)]
    print(f"{'input':>24} | {'method':>22} | {'seconds':>8} | {'peak MiB':>8} | {'AU-PRO':>8}")
    print("-" * 84)
    for n, size in cases:
        maps, masks = synthetic_test_set(n, size)
        label = f"{n} × {size}² ({maps.nbytes / 2**20:.0f} MiB)"
        (exact, curve), t_exact, m_exact = measure(au_pro, maps, masks)
        print(
            f"{label:>24} | {'stad_utils au_pro':>22} | {t_exact:8.2f} | {m_exact:8.0f} | "
            f"{exact:8.5f}"
        )
        swept, t_sweep, m_sweep = measure(sweep_au_pro, maps, masks)
        print(
            f"{'':>24} | {'sweep, 1000 thresholds':>22} | {t_sweep:8.2f} | {m_sweep:8.0f} | "
            f"{swept:8.5f}"
        )
        print(
            f"{'':>24} | |difference| = {abs(exact - swept):.2e}; exact curve has "
            f"{curve.fpr.size:,} points; {int(masks.any(axis=(1, 2)).sum())} defective images"
        )
        print("-" * 84)


if __name__ == "__main__":
    main()
