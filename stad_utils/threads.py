"""How many CPU threads torch uses: one per core that other processes leave idle.

PyTorch runs each CPU operation on a pool of threads, one per core by default, and the
threads spin between operations. On an idle machine that is the fastest choice. Beside
another busy process it is the slowest: a spinning thread holds the core its partner
needs, so every operation waits for the partner's next time slice. In a rehearsal of
``make test`` with one of the two cores kept busy, chapter 3 took 556 s instead of 40 s.
One thread is then as fast as it is on an idle machine (``benchmarks/bench_threads.py``:
FVV training, 2 threads 4.2 s idle but 12.6 s beside a busy core; 1 thread 6.7 s idle
and 6.4 s busy). Letting the threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``)
was measured too: it helps the busy machine less and costs 50 % on an idle one.

So before training or predicting on a CPU, :func:`use_idle_cores` measures for a tenth of
a second how much of the CPU the other processes use (this one is asleep meanwhile) and
sets torch's thread count to the cores they leave idle: at least 1, at most torch's own
default. ``STAD_CPU_THREADS=N`` fixes the count instead.
"""

from __future__ import annotations

import os

import psutil
import torch

THREADS_ENV = "STAD_CPU_THREADS"
SAMPLE_SECONDS = 0.1
_default_threads: int | None = None  # torch's own count, read before the first change


def idle_cores(sample_seconds: float = SAMPLE_SECONDS) -> float:
    """How many cores no process used during the next ``sample_seconds`` (this one
    sleeps meanwhile, so the busy share is the other processes')."""
    busy_percent = psutil.cpu_percent(interval=sample_seconds)
    return (psutil.cpu_count() or 1) * (1.0 - busy_percent / 100.0)


def threads_for(idle: float, most: int) -> int:
    """One thread per idle core, rounded to the nearest whole core, between 1 and
    ``most``: 1.96 idle cores → 2 threads; 1.02 → 1."""
    return max(1, min(most, int(idle + 0.5)))


def use_idle_cores(device: str | torch.device = "cpu") -> int:
    """Set torch's CPU thread count for the work that follows (see the module docstring);
    return it. On CUDA and MPS the CPU threads only feed the GPU: nothing changes."""
    global _default_threads
    if torch.device(device).type != "cpu":
        return torch.get_num_threads()
    if _default_threads is None:
        _default_threads = torch.get_num_threads()
    fixed = os.environ.get(THREADS_ENV, "").strip()
    if fixed:
        if not fixed.isdigit() or int(fixed) < 1:
            raise ValueError(f"{THREADS_ENV} must be a whole number ≥ 1; got {fixed!r}.")
        threads = int(fixed)
    else:
        threads = threads_for(idle_cores(), _default_threads)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads
