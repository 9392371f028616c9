"""Mistakes a user makes, answered with one line instead of a traceback, and W&B going online whenever an API
key for the server it talks to is configured (issue 24, section 5)."""

import subprocess
import sys

import numpy as np
import pytest

from mirror.config import load_config
from mirror.errors import ConfigError
from mirror.models.protocol import DataSpec
from mirror.models.understanding.viclip import ViCLIP
from mirror.training import logging as run_logging

BABYAI = "configs/babyai/mirror.yaml"


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_viclip_image_size_not_a_multiple_of_the_patch_is_a_config_error():
    cfg = load_config(BABYAI, ["understanding.image_size=57"]).understanding
    with pytest.raises(ConfigError, match=r"understanding\.image_size=57 .*patch size 14"):
        ViCLIP(cfg, DataSpec(["go to the red ball", "go to the blue key"], ["GoToLocal"]))


def test_mirror_config_with_a_bad_image_size_exits_2_with_one_line(cli):
    code, out, err = cli("config", BABYAI, "understanding.image_size=57")
    line = one_line(err)
    assert code == 2 and line.startswith("mirror config: error: understanding.image_size=57") and "14" in line


@pytest.fixture
def features(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.save("u.npy", rng.standard_normal((40, 8)).astype(np.float32))
    np.save("e.npy", rng.standard_normal((40, 6)).astype(np.float32))
    return tmp_path


def test_probe_labels_of_the_wrong_length_are_one_line(cli, features):
    np.save("bad.npy", np.ones(39, dtype=bool))
    code, _, err = cli("probe", "--features", "u.npy", "e.npy", "--labels", "bad.npy", "--epochs", "1")
    line = one_line(err)
    assert code == 2 and "bad.npy" in line and "39" in line and "40" in line
    assert not (features / "probe").exists()  # refused before anything is trained or written


def test_probe_labels_of_one_kind_only_are_one_line(cli, features):
    np.save("all.npy", np.ones(40, dtype=bool))
    code, _, err = cli("probe", "--features", "u.npy", "e.npy", "--labels", "all.npy", "--epochs", "1")
    assert code == 1 and "all.npy" in one_line(err) and "40 successes, 0 failures" in err


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home folder of its own: no netrc, no W&B settings, no key in the environment."""
    for name in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_CONFIG_DIR", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def netrc_for(home, machine: str) -> None:
    (home / ".netrc").write_text(f"machine {machine}\n  login user\n  password {'k' * 40}\n")
    (home / ".netrc").chmod(0o600)


def test_wandb_key_for_a_self_hosted_server_counts(home, monkeypatch):
    netrc_for(home, "wandb.example.org")
    assert not run_logging.wandb_key_configured()  # W&B would talk to api.wandb.ai, for which there is no key
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert run_logging.wandb_key_configured()
    monkeypatch.setenv("WANDB_BASE_URL", "https://other.example.org")
    assert not run_logging.wandb_key_configured()


def test_wandb_key_follows_the_server_wandb_login_host_keeps(home):
    netrc_for(home, "wandb.example.org:8080")
    settings = home / ".config" / "wandb" / "settings"
    settings.parent.mkdir(parents=True)
    settings.write_text("[default]\nbase_url = https://wandb.example.org:8080\n")
    assert run_logging.wandb_key_configured()


def test_wandb_key_sources_of_the_default_server(home, monkeypatch):
    assert not run_logging.wandb_key_configured()
    netrc_for(home, "api.wandb.ai")
    assert run_logging.wandb_key_configured()
    (home / ".netrc").unlink()
    other = home / "elsewhere"
    netrc_for(home, "api.wandb.ai")
    (home / ".netrc").rename(other)
    monkeypatch.setenv("NETRC", str(other))
    assert run_logging.wandb_key_configured()
    monkeypatch.delenv("NETRC")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert run_logging.wandb_key_configured()


def test_arps_optimiser_loads_without_a_kernel_hub_lookup_or_a_word():
    """bitsandbytes' CPU backend looks up an optional 4-bit kernel on the Hugging Face hub when `kernels` is
    installed, and says so when it fails; LAMB needs none of it."""
    code = ("import sys; from mirror.training.optim import bitsandbytes_lamb; bitsandbytes_lamb(); "
            "import bitsandbytes; assert 'kernels' not in sys.modules, 'kernels was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr
