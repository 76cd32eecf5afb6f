"""Fixtures shared by several test files."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine two spinning OpenMP threads are many times
    slower. Used by the files that train (``pytestmark = pytest.mark.usefixtures(...)``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
