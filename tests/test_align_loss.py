"""MirrorAlignment's loss against a plain loop implementation of the paper's Eq. 2."""

import math

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.retrieval import RetrievalHitRate

from mirror.align import MirrorAlignment, bidirectional_infonce, recall_at_k, recall_chance, retrieval_hits


def eq2_reference(z_u, z_e, tau):
    """Eq. 2 written term by term with Python loops (single positive per row)."""
    n = len(z_u)
    total = 0.0
    for i in range(n):
        num = math.exp(float(z_u[i] @ z_e[i]) / tau)
        den_ue = sum(math.exp(float(z_u[i] @ z_e[j]) / tau) for j in range(n))
        den_eu = sum(math.exp(float(z_e[i] @ z_u[j]) / tau) for j in range(n))
        total += math.log(num / den_ue) + math.log(num / den_eu)
    return -total / (2 * n)


def multi_positive_reference(z_u, z_e, keys, tau):
    """Each row's target mass split equally among the columns that share its key."""
    n = len(z_u)
    total = 0.0
    for a, b in ((z_u, z_e), (z_e, z_u)):
        for i in range(n):
            logits = [float(a[i] @ b[j]) / tau for j in range(n)]
            log_norm = math.log(sum(math.exp(x) for x in logits))
            positives = [j for j in range(n) if keys[j] == keys[i]]
            total += -sum(logits[j] - log_norm for j in positives) / len(positives)
    return total / (2 * n)


def unit(n, d, seed):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=1)


@pytest.mark.parametrize("tau", [0.02, 0.1, 0.2])
def test_single_positive_equals_eq2(tau):
    z_u, z_e = unit(12, 8, 0), unit(12, 8, 1)
    out = bidirectional_infonce(z_u, z_e, torch.arange(12), tau, distributed=False)
    assert out.loss.item() == pytest.approx(eq2_reference(z_u, z_e, tau), rel=1e-5)


def test_duplicate_keys_are_multi_positive():
    z_u, z_e = unit(10, 6, 2), unit(10, 6, 3)
    keys = torch.tensor([0, 1, 0, 2, 1, 3, 0, 4, 5, 2])
    out = bidirectional_infonce(z_u, z_e, keys, 0.1, distributed=False)
    assert out.loss.item() == pytest.approx(multi_positive_reference(z_u, z_e, keys.tolist(), 0.1), rel=1e-5)


def test_duplicates_are_never_negatives():
    """Which same-key partner a row is paired with does not change the loss."""
    z_u, z_e = unit(8, 5, 4), unit(8, 5, 5)
    keys = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3])
    base = bidirectional_infonce(z_u, z_e, keys, 0.1, distributed=False).loss
    swapped = z_e[[2, 0, 1, 4, 3, 5, 7, 6]]
    assert bidirectional_infonce(z_u, swapped, keys, 0.1, distributed=False).loss.item() == pytest.approx(
        base.item(), rel=1e-6
    )
    distinct = bidirectional_infonce(z_u, z_e, torch.arange(8), 0.1, distributed=False).loss
    assert distinct.item() != pytest.approx(base.item(), rel=1e-3)


def test_gradients_reach_both_projections_and_inputs():
    align = MirrorAlignment(6, 4, dim=16, tau=0.1)
    u = torch.randn(8, 6, requires_grad=True)
    e = torch.randn(8, 4, requires_grad=True)
    align(u, e, torch.arange(8), distributed=False).loss.backward()
    for grad in (align.t_u.weight.grad, align.t_e.weight.grad, u.grad, e.grad):
        assert grad is not None and grad.abs().sum() > 0


def test_loss_falls_when_overfitting_a_batch():
    torch.manual_seed(0)
    align = MirrorAlignment(12, 10, dim=32, tau=0.1)
    u, e, keys = torch.randn(16, 12), torch.randn(16, 10), torch.arange(16)
    opt = torch.optim.Adam(align.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        out = align(u, e, keys, distributed=False)
        first = first if first is not None else out.loss.item()
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert first > math.log(16) * 0.8
    assert out.loss.item() < 0.05 * first
    assert out.hit_ue.item() == 1.0 and out.hit_eu.item() == 1.0


def test_recall_matches_torchmetrics_hit_rate():
    gen = torch.Generator().manual_seed(7)
    for k in (1, 3, 5):
        q, g = torch.randn(20, 8, generator=gen), torch.randn(20, 8, generator=gen)
        keys = torch.randint(0, 6, (20,), generator=gen)
        ours = retrieval_hits(q, g, keys, keys, k).float().mean()
        sim = q @ g.T
        metric = RetrievalHitRate(top_k=k)
        target = keys[:, None] == keys[None, :]
        ref = metric(sim.flatten(), target.flatten(), indexes=torch.arange(20).repeat_interleave(20))
        assert ours.item() == pytest.approx(ref.item(), abs=1e-6)


def test_recall_bidirectional_and_chance():
    z = unit(30, 16, 8).float()
    assert recall_at_k(z, z, torch.arange(30), 1) == 1.0
    assert recall_chance(torch.arange(30), 1) == pytest.approx(1 / 30)
    assert recall_chance(torch.arange(30), 5) == pytest.approx(5 / 30)
    keys = torch.tensor([0, 0, 1, 1, 1, 2])
    # row with key 0 has 2 positives of 6, key 1 has 3, key 2 has 1
    assert recall_chance(keys, 1) == pytest.approx((2 * 2 / 6 + 3 * 3 / 6 + 1 / 6) / 6)
