"""BabyAI: demonstrations, the agent, and a tiny end-to-end joint run with its report."""

import csv
import json
import math
import re

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from mirror.benchmarks.babyai import env as babyai
from mirror.benchmarks.babyai.datamodule import BabyAIData
from mirror.benchmarks.babyai.demos import DemoSet, ensure_demos, generate
from mirror.config import load_config
from mirror.data.seeds import episode_seed
from mirror.errors import MirrorError
from mirror.models.execution.babyai_agent import NUM_ACTIONS, BabyAIAgent, vocabulary
from mirror.models.protocol import DataSpec
from mirror.training.checkpoint import read_checkpoint
from mirror.training.run import train
from tests.conftest import ROOT

TINY = [
    "data.episodes=48", "data.val_episodes=16", "data.batch_size=8", "data.paired=4", "data.val_batch_size=8",
    "data.num_workers=0", "data.demo_workers=1", "data.rollout_workers=1", "data.rollout_episodes=4",
    "data.final_rollout_episodes=6", "trainer.max_steps=4", "trainer.val_every=2", "trainer.ckpt_every=2",
    "trainer.log_every=1", "trainer.progress_bar=false", "logger=csv", "optim.warmup_steps=1",
]


def test_demos_are_deterministic_and_replay_to_success():
    seeds = [episode_seed(3, "train", i) for i in range(12)]
    first, dropped = generate("GoToLocal", seeds, tile=8, workers=1, desc="a")
    again, _ = generate("GoToLocal", seeds, tile=8, workers=2, desc="b")
    assert dropped == 0 and len(first) == 12
    for name in ("images", "directions", "actions", "frame_bytes", "offsets"):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    assert first.missions == again.missions
    for e in range(len(first)):
        env = babyai.make("GoToLocal")
        obs = babyai.reset(env, int(first.seeds[e]))
        assert obs["mission"] == first.missions[e]
        steps = first.steps(e)
        for t, action in zip(range(steps.start, steps.stop), first.actions[steps], strict=True):
            assert np.array_equal(obs["image"], first.images[t])
            obs, reward, terminated, truncated, _ = env.step(int(action))
        assert terminated and reward > 0
        assert len(first.episode_frames(e)) == steps.stop - steps.start + 1


def test_demo_cache_round_trip_and_rebuild(tmp_path):
    paths = ensure_demos(tmp_path, "GoToLocal", {"train": 5, "val": 2}, seed=0, tile=8, workers=1)
    loaded = DemoSet.load(paths["train"], "GoToLocal")
    assert len(loaded) == 5 and loaded.episode_frames(0).shape[1:] == (56, 56, 3)
    stamp = paths["train"].stat().st_mtime_ns
    ensure_demos(tmp_path, "GoToLocal", {"train": 5, "val": 2}, seed=0, tile=8, workers=1)
    assert paths["train"].stat().st_mtime_ns == stamp  # cached
    ensure_demos(tmp_path, "GoToLocal", {"train": 6, "val": 2}, seed=0, tile=8, workers=1)
    assert len(DemoSet.load(paths["train"], "GoToLocal")) == 6  # a different request regenerates
    with pytest.raises(ValueError, match="unknown BabyAI level 'GoToNowhere'"):
        ensure_demos(tmp_path, "GoToNowhere", {"train": 1}, seed=0, tile=8, workers=1)


def test_word_embeddings_start_as_identity():
    spec = DataSpec(["go to the red ball", "go to a blue key"], ["GoToLocal"])
    cfg = load_config(ROOT / "configs/babyai/mirror.yaml").execution
    agent = BabyAIAgent(cfg, spec)
    words = vocabulary(spec.instructions)
    assert words[0] == "<pad>" and len(words) == 9
    weight = agent.word_embedding.weight
    assert torch.equal(weight[1:], torch.eye(len(words))[1:]) and not weight[0].any()


def test_tiny_joint_run_produces_metrics_plots_and_checkpoint(tmp_path):
    cfg = load_config(ROOT / "configs/babyai/mirror.yaml",
                      TINY + [f"data.root={tmp_path / 'demos'}", f"run.root={tmp_path}", "run.name=tiny"])
    run = train(cfg)
    ckpt = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 4
    summary = json.loads((run / "summary.json").read_text())
    names = [row[0] for row in summary["summary"]]
    assert names == ["success rate GoToLocal (%)", "recognition top-1 (val)", "alignment Recall@1 (val)",
                     "P@15 vs MiniLM (agent instructions)"]
    assert all(value is not None for _, value, _ in summary["summary"])
    assert summary["rollouts"]["final/episodes"] == 6
    refs = [r["reference"] for r in summary["language_probe"]]
    assert refs == ["MiniLM", "CLIP text (U)", "bag of words"]
    for plot in ("tsne.png", "final_rollouts.png"):
        assert (run / "plots" / plot).stat().st_size > 1000
    with open(run / "rollouts" / "step0000002.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(r["instruction"].startswith("go to ") for r in rows)  # what each episode was told
    # the filmed episode: of the 4 rollout episodes, the one whose expert needs the most steps
    seeds = [episode_seed(0, "rollout", i) for i in range(4)]
    longest = max(seeds, key=lambda s: len(babyai.expert_episode("GoToLocal", s, tile=1).actions))
    videos = sorted((run / "rollouts" / "videos" / "step0000002").glob("*.mp4"))
    assert len(videos) == 1 and re.fullmatch(rf"GoToLocal-seed{longest}-(success|failure)\.mp4", videos[0].name)
    frames = iio.imread(videos[0], plugin="FFMPEG")
    assert frames.shape[0] >= 2 and frames.shape[-1] == 3 and frames.std() > 0
    assert frames.shape[1] > frames.shape[2] and frames[0, :8].mean() > 200  # the caption band above the grid
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert "| P@15 vs MiniLM" in (run / "summary.md").read_text()


def test_the_readme_python_example_runs_on_a_trained_run_without_its_data(cli, tmp_path, monkeypatch):
    """`mirror.load` needs no data module (no demos are read or made); `MirrorModule.load_from_checkpoint` works."""
    cfg = load_config(ROOT / "configs/babyai/mirror.yaml",
                      TINY + [f"data.root={tmp_path / 'demos'}", f"run.root={tmp_path}", "run.name=tiny",
                              "data.rollout_episodes=0", "data.final_rollout_episodes=0", "trainer.max_steps=2"])
    path = train(cfg) / "checkpoints" / "last.ckpt"
    monkeypatch.setattr("mirror.benchmarks.babyai.datamodule.BabyAIData.__init__", lambda *a: pytest.fail("data built"))

    import mirror
    from mirror.training.module import MirrorModule

    trained = mirror.load(path)
    env = babyai.make("GoToLocal")
    observation = babyai.reset(env, 123)
    mission = observation["mission"]
    policy = trained.policy
    actions = [policy.act(observation, mission) for _ in range(3)]  # the agent's memory carries across steps
    assert all(isinstance(a, int) and 0 <= a < NUM_ACTIONS for a in actions) and policy.state is not None
    policy.reset()
    assert policy.state is None
    frames = np.stack([env.unwrapped.get_pov_render(tile_size=8) for _ in range(8)])  # a (T, H, W, 3) uint8 clip
    index = trained.understanding.recognise(frames, [mission, "go to the blue key"])
    assert type(index) is int and index in (0, 1)
    both, scores = trained.understanding.recognise(np.stack([frames, frames]), [mission, "go to the blue key"],
                                                   scores=True)
    assert both == [index, index] and scores.shape == (2, 2) and int(scores[0].argmax()) == index
    for bad, message in ((frames.astype(np.float32) / 255, "multiply by 255"),
                         (frames.transpose(0, 3, 1, 2), "move the channel axis last"),
                         (frames[:5], "the model's 8 frames")):
        with pytest.raises(MirrorError, match=message):
            trained.understanding.recognise(bad, [mission])
    with pytest.raises(MirrorError, match=r"'bal' not in the agent's vocabulary \(a, ball, blue"):
        policy.act(observation, "go to the red bal")
    with pytest.raises(MirrorError, match=r"gymnasium's reset\(\) returns \(observation, info\)"):
        policy.act(env.reset(seed=1), mission)
    with pytest.raises(MirrorError, match=r"'image' \(7, 7, 3\) and 'direction'; got image \(3, 7, 7\)"):
        policy.act({**observation, "image": observation["image"].transpose(2, 0, 1)}, mission)
    agent = trained.module.execution
    with torch.no_grad():
        direct = agent.act(agent.tokenize([mission]), torch.as_tensor(observation["image"])[None],
                           torch.tensor([observation["direction"]]), None)[0]
    assert trained.policy.act(observation, mission) == int(direct[0])
    module = MirrorModule.load_from_checkpoint(path, map_location="cpu")
    assert module.cfg == trained.config and module.spec == trained.spec
    assert not module.training and not any(m.training for m in module.modules())  # ViCLIP's masking is off
    monkeypatch.undo()  # `mirror eval` builds the data: U's recognition of clips on the test layouts
    code, _, err = cli("eval", "--ckpt", str(path), "--episodes", "2", "data.test_episodes=4")
    metrics = json.loads((path.parent.parent / "eval" / "last" / "metrics.json").read_text())["metrics"]
    assert code == 0 and 0 <= metrics["recognition/instruction@1"] <= 1 and "recognition/instruction@0.25" in metrics
    code, _, err = cli("eval", "--ckpt", str(path), "--paraphrase")
    assert code == 2 and "--paraphrase: the instructions of data 'babyai' have no held-out paraphrases" in err
    state = trained.module.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in module.state_dict().items())


def test_test_clips_are_expert_episodes_of_the_test_layouts_from_their_first_span(tmp_path):
    """U's held-out recognition on BabyAI: clips of expert episodes on the test layouts (the seeds of `mirror
    eval`'s rollouts), never on training or validation ones; each from the first `span` of its episode."""
    cfg = load_config(ROOT / "configs/babyai/mirror.yaml", TINY + [f"data.root={tmp_path / 'demos'}",
                                                                   "data.test_episodes=4"])
    data = BabyAIData(cfg)
    videos, labels, levels = data.clips("test", 0.25)
    demos = data.test_sets()[0]
    assert sorted(demos.seeds) == sorted(episode_seed(0, "test", i) for i in range(4))
    kept = [e for e, m in enumerate(demos.missions) if m in data.spec.instructions]
    assert len(videos) == len(kept) > 0 and videos.shape[1:] == (8, 56, 56, 3) and not levels.any()
    for clip, label, e in zip(videos, labels, kept, strict=True):
        episode = babyai.expert_episode("GoToLocal", int(demos.seeds[e]), tile=8)
        assert data.spec.instructions[label] == episode.mission
        first = episode.frames[: math.ceil(0.25 * len(episode.frames))]
        assert all(any(np.array_equal(frame, f) for f in first) for frame in clip)
    assert not set(demos.seeds) & set(data.splits()["train"][0].seeds)
