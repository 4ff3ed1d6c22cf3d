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
a second how much of the machine's CPU the other processes use (the whole machine's use
less this process's own, e.g. its threads still spinning) and sets torch's thread count to
the cores they leave idle: at least 1, at most torch's own default. A decision is reused
for 10 s, so a prediction right after training, or many small ones, measure once.
``STAD_CPU_THREADS=N`` fixes the count instead. NumPy's BLAS threads (threadpoolctl) get
the same count.

Results can differ in the last bits between thread counts (sums are split across
threads), so a training resumed from a checkpoint uses the count it was trained with
(:func:`stad_utils.train.fit`), and gives the same result as an uninterrupted one.
"""

from __future__ import annotations

import os
import time

import psutil
import torch
from threadpoolctl import threadpool_limits

THREADS_ENV = "STAD_CPU_THREADS"
SAMPLE_SECONDS = 0.1
REUSE_SECONDS = 10.0
_default_threads: int | None = None  # torch's own count, read before the first change
_last_decision: tuple[float, int] | None = None  # (time.monotonic(), threads)


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def idle_cores(sample_seconds: float = SAMPLE_SECONDS) -> float:
    """How many of the machine's cores the *other* processes left idle during the next
    ``sample_seconds``: the whole machine's idle share, plus what this process used
    meanwhile (its threads may still spin after an operation)."""
    me = psutil.Process()
    own_before = _cpu_seconds(me)
    busy_percent = psutil.cpu_percent(interval=sample_seconds)
    own_cores = (_cpu_seconds(me) - own_before) / sample_seconds
    cores = psutil.cpu_count() or 1
    return min(float(cores), cores * (1.0 - busy_percent / 100.0) + own_cores)


def threads_for(idle: float, most: int) -> int:
    """One thread per idle core, rounded to the nearest whole core, between 1 and
    ``most``: 1.96 idle cores → 2 threads; 1.02 → 1."""
    return max(1, min(most, int(idle + 0.5)))


def use_idle_cores(device: str | torch.device = "cpu", threads: int | None = None) -> int:
    """Set torch's CPU thread count for the work that follows (see the module docstring);
    return it. ``threads`` imposes a count (a resumed training's). On CUDA and MPS the
    CPU threads only feed the GPU: nothing changes."""
    global _default_threads, _last_decision
    if torch.device(device).type != "cpu":
        return torch.get_num_threads()
    if _default_threads is None:
        _default_threads = torch.get_num_threads()
    fixed = os.environ.get(THREADS_ENV, "").strip()
    now = time.monotonic()
    if fixed:
        if not fixed.isdigit() or int(fixed) < 1:
            raise ValueError(f"{THREADS_ENV} must be a whole number ≥ 1; got {fixed!r}.")
        threads = int(fixed)
    elif threads is not None:
        threads = max(1, int(threads))
    elif _last_decision is not None and now - _last_decision[0] < REUSE_SECONDS:
        threads = _last_decision[1]
    else:
        threads = threads_for(idle_cores(), _default_threads)
        _last_decision = (now, threads)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    # NumPy's BLAS (OpenBLAS) has its own pool of spinning threads (the interlude's
    # per-position Gaussian inverts its covariances with NumPy): the same count for it
    threadpool_limits(limits=threads, user_api="blas")
    return threads
