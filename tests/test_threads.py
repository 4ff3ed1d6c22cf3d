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
    monkeypatch.setattr(threads, "_last_decision", None)
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
    assert threads.use_idle_cores("cpu") == 1  # the decision is reused for 10 s ...
    monkeypatch.setattr(threads, "_last_decision", (-1e9, 1))  # ... and then measured again
    assert threads.use_idle_cores(torch.device("cpu")) == 2
    assert torch.get_num_threads() == 2


def test_a_count_can_be_imposed(monkeypatch):
    """A resumed training runs with the count it was trained with (stad_utils.train.fit)."""
    monkeypatch.setattr(threads, "_default_threads", 2)
    monkeypatch.setattr(threads, "idle_cores", lambda: 1.0)
    assert threads.use_idle_cores("cpu", threads=2) == 2 and torch.get_num_threads() == 2


def test_this_processs_own_cpu_use_is_not_counted_as_busy(monkeypatch):
    """The machine was 100 % busy during the sample, all of it this process's own threads
    (still spinning after an operation): both cores count as idle for the others."""

    class OwnProcess:
        calls = 0

        def cpu_times(self):
            OwnProcess.calls += 1
            used = 0.0 if OwnProcess.calls == 1 else 2 * threads.SAMPLE_SECONDS
            return type("Times", (), {"user": used, "system": 0.0})()

    monkeypatch.setattr(threads.psutil, "Process", OwnProcess)
    monkeypatch.setattr(threads.psutil, "cpu_percent", lambda interval: 100.0)
    monkeypatch.setattr(threads.psutil, "cpu_count", lambda: 2)
    assert threads.idle_cores() == pytest.approx(2.0)
    OwnProcess.calls = 0
    monkeypatch.setattr(threads.psutil, "cpu_percent", lambda interval: 75.0)
    monkeypatch.setattr(
        OwnProcess, "cpu_times", lambda self: type("T", (), {"user": 0.0, "system": 0.0})()
    )
    assert threads.idle_cores() == pytest.approx(0.5)  # others use 1.5 cores


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


def test_numpys_blas_threads_get_the_same_count(monkeypatch):
    """NumPy's BLAS has its own spinning thread pool (the interlude's Gaussian baseline
    inverts covariances with NumPy): it must follow the decision too."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    original = blas_threads()
    monkeypatch.setattr(threads, "_default_threads", 2)
    monkeypatch.setattr(threads, "idle_cores", lambda: 1.0)
    try:
        threadpool_limits(limits=2, user_api="blas")
        threads.use_idle_cores("cpu")
        assert blas_threads() and all(count == 1 for count in blas_threads())
    finally:
        threadpool_limits(limits=max(original, default=1), user_api="blas")
