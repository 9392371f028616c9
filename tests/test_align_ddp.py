"""The gathered loss across 2 gloo processes equals one process on the concatenated batch."""

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mirror.align import MirrorAlignment

GLOBAL_BATCH, WORLD = 12, 2


class Pair(nn.Module):
    """A stand-in for U and E backbones feeding MirrorAlignment."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.u_net, self.e_net = nn.Linear(7, 9), nn.Linear(5, 6)
        self.align = MirrorAlignment(9, 6, dim=16, tau=0.1)

    def forward(self, x_u, x_e, keys, distributed):
        return self.align(self.u_net(x_u), self.e_net(x_e), keys, distributed).loss


def batch():
    gen = torch.Generator().manual_seed(1)
    keys = torch.tensor([0, 1, 2, 3, 0, 4, 5, 1, 6, 7, 2, 8])  # duplicates within and across ranks
    return torch.randn(GLOBAL_BATCH, 7, generator=gen), torch.randn(GLOBAL_BATCH, 5, generator=gen), keys


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def worker(rank, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    model = DistributedDataParallel(Pair())
    x_u, x_e, keys = batch()
    part = slice(rank * GLOBAL_BATCH // WORLD, (rank + 1) * GLOBAL_BATCH // WORLD)
    loss = model(x_u[part], x_e[part], keys[part], distributed=True)
    loss.backward()
    mean = loss.detach().clone()
    dist.all_reduce(mean)
    out[rank] = {"loss": mean / WORLD, "grads": grads(model.module)}
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_loss_and_gradients_match_single_process():
    single = Pair()
    loss = single(*batch(), distributed=False)
    loss.backward()
    expected = grads(single)

    out = mp.Manager().dict()
    mp.spawn(worker, args=(free_port(), out), nprocs=WORLD, join=True)
    for rank in range(WORLD):
        assert torch.allclose(out[rank]["loss"], loss.detach(), atol=1e-6)
        for name, grad in expected.items():
            assert torch.allclose(out[rank]["grads"][name], grad, atol=1e-6), name
