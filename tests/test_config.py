"""Config merging (defaults <- experiment file <- command line) and its one-line errors."""

import re
import subprocess
import sys

import pytest

from mirror.config import Positives, load_config
from mirror.errors import ConfigError
from tests.conftest import ROOT, TOY


def test_layers_merge_in_order(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text(f"base: {TOY}\nalign:\n  tau: 0.3\ntrainer:\n  max_steps: 5\n")
    cfg = load_config(child, ["trainer.max_steps=7", "align.positives=task", "seed=3"])
    assert cfg.align.tau == 0.3  # experiment file over the base file
    assert cfg.trainer.max_steps == 7  # command line over the file
    assert cfg.align.positives is Positives.task and cfg.seed == 3
    assert cfg.data.batch_size == 16 and cfg.data.size == 256  # base file and the data's own defaults
    assert cfg.align.dim == 32 and cfg.align.weight == 0.5
    assert cfg.run.name == f"{tmp_path.name}-child"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["align.tua=0.2"], "unknown key 'align.tua' (did you mean 'align.tau'?)"),
        (["trainer.devise=2"], "unknown key 'trainer.devise' (did you mean 'trainer.devices'?)"),
        (["understanding.widht=8"], "unknown key 'understanding.widht' (did you mean 'understanding.width'?)"),
        (["align.tau=abc"], "bad value for 'align.tau'"),
        (["trainer.devices=two"], "bad value for 'trainer.devices'"),
        (["align.positives=scene"], "bad value for 'align.positives'"),
        (["align.tau=-1"], "bad value for 'align.tau': must be > 0"),
        (["understanding.fraction=0"], "bad value for 'understanding.fraction'"),
        (["seed"], "'seed' is not KEY=VALUE"),
        (["execution.name=tests.toy:Nope"], "module 'tests.toy' has no 'Nope'"),
        (["data.name=babyia"], "unknown data 'babyia'"),
    ],
)
def test_bad_overrides_exit_2_with_one_line(cli, overrides, message):
    code, out, err = cli("train", TOY, *overrides)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unknown_key_in_file_names_the_file(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"base: {TOY}\noptim:\n  warmup: 10\n")
    code, _, err = cli("train", str(bad))
    assert code == 2
    assert str(bad) in err and "unknown key 'optim.warmup' (did you mean 'optim.warmup_steps'?)" in err


def test_missing_file_and_bad_yaml(cli, tmp_path):
    code, _, err = cli("train", str(tmp_path / "nope.yaml"))
    assert code == 2 and "config file not found" in err and "nope.yaml" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("align: {tau: 0.1\n")
    code, _, err = cli("train", str(broken))
    assert code == 2 and "invalid YAML" in err and "broken.yaml" in err


def test_missing_model_name(tmp_path):
    cfg = tmp_path / "noname.yaml"
    cfg.write_text("data:\n  name: tests.toy:ToyData\nexecution:\n  name: tests.toy:ToyExecution\n")
    with pytest.raises(ConfigError, match="missing value for 'understanding.name'"):
        load_config(cfg)


def test_console_script_exit_code_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "mirror", "train", TOY, "align.tua=0.2"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "mirror train: error: command line: unknown key 'align.tua' (did you mean 'align.tau'?)"
    )


def test_switching_a_model_voids_its_earlier_keys():
    arp = load_config(ROOT / "configs/rlbench/arp.yaml")
    assert arp.understanding.name == "none" and arp.align.weight == 0
    assert arp.execution.name == "arp" and arp.execution.lr_per_sample  # the rest of mirror.yaml still applies
    with pytest.raises(ConfigError, match="unknown key 'understanding.width'"):
        load_config(ROOT / "configs/rlbench/viclip.yaml", ["understanding.width=3"])


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*/**/*.yaml")),
                         ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_every_shipped_config_loads_and_passes_its_checks(path):
    cfg = load_config(path)
    assert cfg.data.name == path.relative_to(ROOT / "configs").parts[0]


def test_the_pretrained_setting_is_one_run_with_a_branch_off_starting_u_from_the_pretrained_u():
    folder = ROOT / "configs/metaworld/pretrained"
    joint, alone = (load_config(folder / f"{name}.yaml", ["run.root=/r"]) for name in ("mirror", "arp"))
    u = load_config(folder / "u.yaml")
    assert joint.understanding.checkpoint == f"/r/{u.run.name}/checkpoints/last.ckpt"
    assert joint.understanding.text == u.understanding.text == joint.execution.language == "minilm"
    assert (alone.understanding.name, alone.align.weight, joint.align.weight) == ("none", 0, 0.5)
    assert alone.execution == joint.execution and alone.trainer == joint.trainer
    assert alone.data == joint.data
    for positives in ("episode", "task"):  # Table 3 in this setting: the joint run but for the alignment's positives
        table3 = load_config(folder / f"mirror_{positives}.yaml", ["run.root=/r"])
        assert table3.align.positives == positives and joint.align.positives == "instruction"
        assert (table3.understanding, table3.execution, table3.data) == (joint.understanding, joint.execution,
                                                                          joint.data)


def test_mirror_config_shows_the_run_and_names_every_missing_input(cli, tmp_path):
    code, out, err = cli("config", str(ROOT / "configs/babyai/mirror.yaml"), "align.tau=0.2")
    assert code == 0, err
    assert "  tau: 0.2" in out and "all present" in out
    assert re.search(r"understanding +viclip +\d+\.\d{3} +trainable", out)
    weights = tmp_path / "RN50.pt"
    weights.write_bytes(b"")
    code, out, err = cli("config", str(ROOT / "configs/rlbench/mirror.yaml"), f"execution.clip_checkpoint={weights}",
                         f"data.root={tmp_path}")
    assert code == 2 and err.count("\n") == 1
    assert "missing: data.val_root = data/rlbench/val" in err and "understanding.checkpoint = " in err
    assert str(weights) not in err and "data.root" not in err  # present inputs are not reported missing
    assert "execution      arp               72.116" in out  # ARP's parameter count, as mlzxy/arp's


def test_a_single_value_for_a_list_and_the_folders_a_run_makes(cli, tmp_path):
    babyai = str(ROOT / "configs/babyai/mirror.yaml")
    code, _, err = cli("config", babyai, "data.levels=GoToLocal")
    assert code == 2 and err.strip().endswith("bad value for 'data.levels': a list is expected, written in "
                                              "brackets: data.levels=[a,b]") and len(err.strip().splitlines()) == 1
    code, out, err = cli("config", babyai, f"data.root={tmp_path / 'demos'}")
    assert code == 0, err
    assert f"  data.root = {tmp_path / 'demos'} (made when absent)" in out and "\n  none" not in out
