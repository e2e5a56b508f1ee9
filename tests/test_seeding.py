"""``deepcut.seeding.seeded``: torch's global generator seeded for one block, as ``fork_rng``
plus ``manual_seed`` do, without the lazy seeding of every CUDA device on a CPU block."""
import pytest
import torch

from deepcut.seeding import seeded

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_seeded_draws_what_manual_seed_draws_and_restores_the_generator():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        want = torch.rand(5), torch.nn.functional.dropout(torch.ones(8), 0.5)
    torch.manual_seed(123)
    outside = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7):
        got = torch.rand(5), torch.nn.functional.dropout(torch.ones(8), 0.5)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert torch.equal(torch.rand(3), outside)  # the block left the global stream as it was
    with seeded(None):
        zero = torch.rand(2)
    with seeded(0):
        assert torch.equal(torch.rand(2), zero)


def test_a_cpu_block_does_not_seed_cuda(monkeypatch):
    """``torch.manual_seed`` would call ``torch.cuda.manual_seed_all``: the costly lazy call."""
    def fail(*_a, **_k):
        raise AssertionError("a CPU block seeded CUDA")

    monkeypatch.setattr(torch.cuda, "manual_seed_all", fail)
    monkeypatch.setattr(torch.cuda, "manual_seed", fail)
    with seeded(3, "cpu"):
        torch.rand(1)


@cuda
def test_a_cuda_block_seeds_and_restores_its_device():
    dev = torch.device("cuda")
    with torch.random.fork_rng(devices=[dev], device_type="cuda"):
        torch.manual_seed(5)
        want = torch.rand(4, device=dev)
    before = torch.cuda.get_rng_state(dev)
    with seeded(5, dev):
        got = torch.rand(4, device=dev)
    assert torch.equal(got, want)
    assert torch.equal(torch.cuda.get_rng_state(dev), before)
