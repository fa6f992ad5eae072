"""Shared test set-up."""
import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run every test module single-threaded: the suite's models are tiny, and on a 2-core machine torch's
    intra-op threads mostly hand work back and forth (a nano decode step: ~3 ms on one thread, ~30 ms on two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
