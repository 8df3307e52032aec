import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small tensors run faster on one thread on the 2-core CI machine (and deterministically)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
