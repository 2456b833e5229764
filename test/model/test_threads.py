"""torch_threads: 0 means half the cores (1 to 4), not torch's one thread per core."""
from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from wint3r_ros.model.runtime import default_torch_threads, set_torch_threads  # noqa: E402


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (3, 1), (4, 2), (6, 3), (8, 4),
                                                (16, 4), (128, 4)])
def test_auto_threads_leave_half_the_cores_to_other_processes(cores, threads):
    assert default_torch_threads(cores) == threads


def test_auto_threads_count_the_cores_this_process_may_use():
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert default_torch_threads() == default_torch_threads(allowed)


def test_set_torch_threads_sets_a_given_count_or_the_auto_default():
    before = torch.get_num_threads()
    try:
        assert set_torch_threads(3) == 3 and torch.get_num_threads() == 3
        assert set_torch_threads(0) == default_torch_threads()
        assert torch.get_num_threads() == default_torch_threads()
    finally:
        torch.set_num_threads(before)
