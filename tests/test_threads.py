"""stad_utils.threads: one torch thread per core the other processes leave idle."""

from __future__ import annotations

import pytest
import torch

from stad_utils import threads


@pytest.fixture(autouse=True)
def keep_torch_threads(monkeypatch):
    """Each test starts from torch's count and leaves it as it found it."""
    before = torch.get_num_threads()
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("idle", "most", "expected"),
    [(1.96, 2, 2), (1.02, 2, 1), (1.5, 2, 2), (1.49, 2, 1), (0.1, 2, 1), (7.8, 4, 4), (0.0, 8, 1)],
)
def test_one_thread_per_idle_core_between_one_and_torchs_count(idle, most, expected):
    assert threads.threads_for(idle, most) == expected


def test_a_busy_core_leaves_one_thread_and_an_idle_machine_gets_them_back(monkeypatch):
    monkeypatch.setattr(threads, "_default_threads", 2)
    monkeypatch.setattr(threads, "idle_cores", lambda: 1.03)  # another process on one core
    assert threads.use_idle_cores("cpu") == 1
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(threads, "idle_cores", lambda: 1.98)  # it finished
    assert threads.use_idle_cores(torch.device("cpu")) == 2
    assert torch.get_num_threads() == 2


def test_the_environment_fixes_the_count_and_a_bad_value_is_refused(monkeypatch):
    monkeypatch.setattr(threads, "idle_cores", lambda: pytest.fail("must not measure"))
    monkeypatch.setenv(threads.THREADS_ENV, "1")
    assert threads.use_idle_cores("cpu") == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv(threads.THREADS_ENV, "two")
    with pytest.raises(ValueError, match=r"STAD_CPU_THREADS must be a whole number ≥ 1; got 'two'"):
        threads.use_idle_cores("cpu")


def test_a_gpu_run_leaves_the_cpu_threads_alone(monkeypatch):
    monkeypatch.setattr(threads, "idle_cores", lambda: pytest.fail("must not measure"))
    before = torch.get_num_threads()
    assert threads.use_idle_cores("cuda") == before
    assert threads.use_idle_cores("mps") == before


def test_the_measurement_reads_the_whole_cpu():
    """A real sample: between 0 and the machine's logical cores."""
    import psutil

    idle = threads.idle_cores(0.05)
    assert 0.0 <= idle <= psutil.cpu_count()
