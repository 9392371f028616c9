"""The RLBench code paths against the real libraries: the fake in tests/fakesim keeps the signatures and classes
recorded from the real sources (tests/fakesim/real_api.json, at the commits docker/Dockerfile.rlbench builds),
and the image pins every source it fetches."""

import ast
import enum
import importlib
import inspect
import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.fakesim.make_manifest import MANIFEST, pinned_commits

MANIFEST_DATA = json.loads(MANIFEST.read_text())
DOCKERFILE = (ROOT / "docker" / "Dockerfile.rlbench").read_text()
REQUIREMENTS = ROOT / "docker" / "rlbench-requirements.txt"


@pytest.fixture(scope="module")
def fake():
    """Import the fake's modules by their real names; returns a resolver of dotted names."""
    sys.path.insert(0, str(ROOT / "tests" / "fakesim"))
    try:
        def resolve(dotted: str):
            module, _, name = dotted.rpartition(".")
            return getattr(importlib.import_module(module), name)
        yield resolve
    finally:
        sys.path.remove(str(ROOT / "tests" / "fakesim"))
        for name in [m for m in sys.modules if m == "rlbench" or m.startswith(("rlbench.", "pyrep"))]:
            del sys.modules[name]


def written(parameter: inspect.Parameter) -> tuple[str, object]:
    prefix = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(parameter.kind, "")
    return prefix + parameter.name, parameter.default


def default_matches(source: str, value) -> bool:
    """A default written `source` in the real code and the fake's default `value` are the same."""
    node = ast.parse(source, mode="eval").body
    if isinstance(node, ast.Call):  # e.g. Identity(), ObservationConfig(): an instance of that class
        return type(value).__name__ == ast.unparse(node.func)
    if isinstance(node, ast.Attribute):  # e.g. RenderMode.OPENGL3
        return isinstance(value, enum.Enum) and f"{type(value).__name__}.{value.name}" == source
    if isinstance(node, ast.Name) and node.id not in ("None", "True", "False"):  # a module constant
        return value is not None
    return ast.literal_eval(node) == value


def check_signature(fake_fn, real: list[str], where: str) -> None:
    fake_params = [written(p) for p in inspect.signature(fake_fn).parameters.values()]
    keyword_only = [p.name for p in inspect.signature(fake_fn).parameters.values() if p.kind == p.KEYWORD_ONLY]
    real_params = [(p.split("=", 1) + [None])[:2] for p in real if p != "*"]
    assert [n for n, _ in fake_params] == [n for n, _ in real_params], where
    assert keyword_only == [p.split("=")[0] for p in real[real.index("*") + 1:]] if "*" in real else not keyword_only
    for (name, value), (_, source) in zip(fake_params, real_params, strict=True):
        if source is None:
            assert value is inspect.Parameter.empty, f"{where}: '{name}' has a default only in the fake"
        else:
            assert default_matches(source, value), f"{where}: '{name}' defaults to {value!r}, the real to {source}"


def test_manifest_is_taken_at_the_commits_the_image_builds():
    sources = MANIFEST_DATA["sources"]
    assert {k: v["commit"] for k, v in sources.items()} == pinned_commits()
    for source in sources.values():
        assert f"https://github.com/{source['repository']}.git" in DOCKERFILE


def test_fake_classes_have_the_real_signatures_bases_and_no_method_the_real_lacks(fake):
    for dotted, real in MANIFEST_DATA["classes"].items():
        cls = fake(dotted)
        if issubclass(cls, (BaseException, enum.Enum)):  # what `except` and isinstance see
            assert [b.__name__ for b in cls.__bases__] == real["bases"], dotted
        for method, params in real["methods"].items():
            if method == "__init__" or hasattr(cls, method):
                check_signature(getattr(cls, method), params, f"{dotted}.{method}")
        public = {m for klass in cls.__mro__ if klass.__module__.split(".")[0] in ("rlbench", "pyrep")
                  for m, v in vars(klass).items() if not m.startswith("_") and callable(v)}
        assert public <= set(real["methods"]), f"{dotted}: {sorted(public - set(real['methods']))} are not real"
        if "members" in real:
            assert {m.name for m in cls} <= set(real["members"]), dotted


def test_fake_functions_have_the_real_signatures(fake):
    for dotted, params in MANIFEST_DATA["functions"].items():
        check_signature(fake(dotted), params, dotted)


def test_fake_objects_carry_only_real_attributes(fake, tmp_path):
    """The instances the adapter builds and reads set no attribute the real __init__ does not set."""
    classes = MANIFEST_DATA["classes"]
    env = fake("rlbench.environment.Environment")(fake("rlbench.action_modes.action_mode.MoveArmThenGripper")(
        fake("rlbench.action_modes.arm_action_modes.EndEffectorPoseViaPlanning")(),
        fake("rlbench.action_modes.gripper_action_modes.Discrete")()), dataset_root=str(tmp_path), headless=True)
    task = env.get_task(fake("rlbench.backend.utils.task_file_to_task_class")("open_drawer"))
    _, observation = task.reset()
    objects = {"rlbench.environment.Environment": env, "rlbench.task_environment.TaskEnvironment": task,
               "rlbench.backend.scene.Scene": task._scene, "rlbench.backend.observation.Observation": observation,
               "rlbench.observation_config.ObservationConfig": env._obs_config,
               "rlbench.observation_config.CameraConfig": env._obs_config.front_camera}
    for dotted, obj in objects.items():
        extra = set(vars(obj)) - set(classes[dotted]["attributes"])
        assert not extra, f"{dotted}: {extra}"
    assert set(vars(observation)) == set(classes["rlbench.backend.observation.Observation"]["attributes"])


def test_manifest_check_catches_a_drifted_fake(fake, monkeypatch):
    """The checks above fail on a keyword the real Environment does not take and on a method it lacks."""
    env_cls = fake("rlbench.environment.Environment")
    real = MANIFEST_DATA["classes"]["rlbench.environment.Environment"]["methods"]["__init__"]
    monkeypatch.setattr(env_cls, "__init__", lambda self, action_mode, dataset_root="", **kwargs: None)
    with pytest.raises(AssertionError):
        check_signature(env_cls.__init__, real, "Environment.__init__")
    with pytest.raises(AssertionError):
        check_signature(lambda self, action_mode, dataset_root=".", **kw: None, real, "defaults")


def dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S*)$", DOCKERFILE, re.M))


def test_image_fetches_every_repository_at_a_full_commit():
    args = dockerfile_args()
    text = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), DOCKERFILE.replace('"', ""))
    assert "git clone" not in text  # a clone takes whatever the branch holds that day
    fetches = re.findall(r"git -C (\S+) fetch -q --depth 1 (https://\S+) (\S+)", text)
    assert {url for _, url, _ in fetches} == {"https://github.com/stepjam/PyRep.git",
                                             "https://github.com/MohitShridhar/RLBench.git"}
    for folder, _, commit in fetches:
        assert re.fullmatch(r"[0-9a-f]{40}", commit), commit
        assert f"git -C {folder} checkout -q FETCH_HEAD" in text


def test_image_downloads_are_versioned_and_checkable():
    args = dockerfile_args()
    urls = set(re.findall(r"https://\S+\.tar\.\w+", DOCKERFILE))
    assert urls == {args["COPPELIASIM_URL"]}
    assert "/V4_1_0/CoppeliaSim_Edu_V4_1_0_" in args["COPPELIASIM_URL"]
    assert 'sha256sum -c -' in DOCKERFILE and "COPPELIASIM_SHA256" in DOCKERFILE
    assert not re.search(r"^\s*(ADD|RUN .*curl)\s", DOCKERFILE, re.M)


def test_image_python_packages_are_all_pinned_and_installed_from_one_list():
    lines = [ln.strip() for ln in REQUIREMENTS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", ln) for ln in lines), lines
    names = {ln.split("==")[0].lower() for ln in lines}
    assert {"cffi", "numpy", "torch", "pip", "setuptools"} <= names
    assert "numpy==1." in REQUIREMENTS.read_text()  # the series the fork and PyRep were written against
    reqs = "docker/rlbench-requirements.txt"
    assert f"pip install --only-binary=:all: -r {reqs}" in DOCKERFILE
    assert f'pip install --no-build-isolation --only-binary=:all: -c {reqs} -e ".[dev]"' in DOCKERFILE
    code = "\n".join(ln for ln in DOCKERFILE.splitlines() if not ln.startswith("#"))
    assert "requirements.txt" not in code.replace(reqs, "")  # neither PyRep's nor RLBench's own (unpinned) lists
    # every build uses the pinned setuptools and cffi, none an unpinned isolated build environment
    assert code.count("pip install --no-build-isolation") == 3 and code.count("pip install") == 5
    assert "python3.10 -m venv" in DOCKERFILE  # the Python docker/resolve-rlbench.sh resolves for
    assert "--python-version 3.10" in (ROOT / "docker" / "resolve-rlbench.sh").read_text()


def test_entrypoint_waits_for_the_display_and_reports_a_dead_one(tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    xvfb = fake_bin / "Xvfb"
    number = 40000 + os.getpid() % 20000
    socket_path = f"/tmp/.X11-unix/X{number}"
    xvfb.write_text(f"#!{sys.executable}\nimport socket, sys, time, os\n"
                    "os.makedirs('/tmp/.X11-unix', exist_ok=True)\n"
                    f"s = socket.socket(socket.AF_UNIX); s.bind({socket_path!r}); time.sleep(10)\n")
    xvfb.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "DISPLAY": f":{number}.0"}
    try:
        done = subprocess.run([str(ROOT / "docker" / "entrypoint.sh"), "sh", "-c", "echo ran with $DISPLAY"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout.strip() == f"ran with :{number}.0", done.stderr
    finally:
        if os.path.exists(socket_path):
            os.unlink(socket_path)
    xvfb.write_text("#!/bin/sh\necho 'no screens found' >&2\nexit 1\n")
    failed = subprocess.run([str(ROOT / "docker" / "entrypoint.sh"), "true"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert failed.returncode == 1 and "Xvfb exited" in failed.stderr and "no screens found" in failed.stderr
