"""Probing: retrieval on synthetic features, P@k and Procrustes against references, and a checkpoint series."""

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from mirror.config import load_config
from mirror.probe.alignment import Pairs, probe, success_failure
from mirror.probe.similarity import precision_at_k, procrustes_test
from mirror.training.run import train
from tests.conftest import TOY


def synthetic(n, noise, linked, seed=0):
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(n, 24, generator=gen)
    e = u @ torch.randn(24, 16, generator=gen) if linked else torch.randn(n, 16, generator=gen)
    return Pairs(u, e + noise * torch.randn(n, 16, generator=gen), torch.arange(n))


def test_recall_near_one_for_a_noisy_linear_map_and_chance_for_independent_features():
    train, test = synthetic(1400, 0.1, linked=True).split(0.3, seed=0)
    linked = probe(train, test, dim=64, epochs=40)
    assert linked.recall1 > 0.9 and linked.chance1 == pytest.approx(1 / len(test))
    train, test = synthetic(1400, 0.1, linked=False).split(0.3, seed=0)
    independent = probe(train, test, dim=64, epochs=40)
    assert independent.recall1 < 5 * independent.chance1 + 0.01


def test_success_failure_subsets_have_equal_sizes():
    pairs = synthetic(300, 0.1, linked=True)
    labels = np.arange(300) % 3 == 0  # 100 successes, 200 failures
    out = success_failure(pairs, labels, dim=32, epochs=5)
    assert out["samples_per_subset"] == 100
    for subset in ("success", "failure"):
        assert out[subset]["n_train"] + out[subset]["n_test"] == 100
    assert out["success"]["ci1"][0] <= out["success"]["recall1"] <= out["success"]["ci1"][1]


def reference_precision(a, b, k):
    """Loops: cosine k-NN sets (self excluded) and their overlap."""
    def knn(x, i):
        sims = [(float(x[i] @ x[j] / np.linalg.norm(x[i]) / np.linalg.norm(x[j])), j) for j in range(len(x)) if j != i]
        return {j for _, j in sorted(sims, key=lambda s: (-s[0], s[1]))[:k]}
    return sum(len(knn(a, i) & knn(b, i)) / k for i in range(len(a))) / len(a)


def test_precision_at_k_matches_a_loop_reference_and_is_one_for_a_rotation():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((40, 10)), rng.standard_normal((40, 7))
    for k in (1, 5, 10, 15):
        assert precision_at_k(a, b, k) == pytest.approx(reference_precision(a, b, k))
    rotated = a @ ortho_group.rvs(10, random_state=1)
    assert precision_at_k(a, rotated, 15) == pytest.approx(1.0)


def test_procrustes_near_zero_for_a_scaled_rotation_and_above_null_otherwise():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((60, 12))
    same = procrustes_test(a, 3.0 * a @ ortho_group.rvs(12, random_state=2), width=8, permutations=100)
    assert same.disparity < 1e-10 and same.p_value < 0.02 and same.null_mean > 0.5
    other = procrustes_test(a, rng.standard_normal((60, 12)), width=8, permutations=100)
    assert other.disparity > 0.5 and other.p_value > 0.05


def test_series_over_two_checkpoints_writes_the_curve(cli, tmp_path):
    overrides = [f"run.root={tmp_path}", "run.name=toy", "align.weight=0"]
    train(load_config(TOY, overrides))
    out = tmp_path / "series"
    code, stdout, err = cli("probe", TOY, *overrides, "--series", str(tmp_path / "toy"), "--epochs", "3",
                            "--out", str(out))
    assert code == 0, err
    rows = (out / "series.csv").read_text().splitlines()
    assert rows[0].startswith("step,recall1,recall5") and [r.split(",")[0] for r in rows[1:]] == ["4", "8"]
    assert (out / "series.png").stat().st_size > 1000
    assert "step 8: Recall@1" in stdout


def test_probe_two_models_and_feature_files(cli, tmp_path):
    overrides = [f"run.root={tmp_path}", "run.name=toy"]
    train(load_config(TOY, overrides))
    ckpt = str(tmp_path / "toy" / "checkpoints" / "last.ckpt")
    code, stdout, err = cli("probe", TOY, *overrides, "--understanding", ckpt, "--execution", ckpt,
                            "--epochs", "3", "--out", str(tmp_path / "p"))
    assert code == 0, err
    assert "Recall@1" in stdout and (tmp_path / "p" / "probe.json").is_file()
    pairs = synthetic(200, 0.1, linked=True)
    np.save(tmp_path / "u.npy", pairs.u.numpy())
    np.save(tmp_path / "e.npy", pairs.e.numpy())
    code, stdout, err = cli("probe", "--features", str(tmp_path / "u.npy"), str(tmp_path / "e.npy"),
                            "--out", str(tmp_path / "f"))
    assert code == 0, err
    assert (tmp_path / "f" / "features.json").is_file()
    code, _, err = cli("probe", "--features", str(tmp_path / "u.npy"), str(tmp_path / "none.npy"))
    assert code == 1 and "file not found" in err
