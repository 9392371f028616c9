"""Write tests/fakesim/real_api.json: the classes and signatures of PyRep and the PerAct fork of RLBench that
`mirror.benchmarks.rlbench.env` and the fake use, read from the real sources at the commits the RLBench image installs.

    python tests/fakesim/make_manifest.py --pyrep PYREP_GIT_DIR --rlbench RLBENCH_GIT_DIR

Both directories are git repositories (bare clones will do); the commits are docker/Dockerfile.rlbench's. The
sources are parsed, not imported (importing them needs CoppeliaSim).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCKERFILE = HERE.parent.parent / "docker" / "Dockerfile.rlbench"
MANIFEST = HERE / "real_api.json"
REPOSITORIES = {"pyrep": "stepjam/PyRep", "rlbench": "MohitShridhar/RLBench"}
COMMIT_ARGS = {"pyrep": "PYREP_COMMIT", "rlbench": "RLBENCH_COMMIT"}

# module -> classes (with every public method and the __init__ signature) and functions that are recorded
CLASSES = {
    "pyrep.const": ["RenderMode"],
    "pyrep.errors": ["ConfigurationPathError", "IKError"],
    "rlbench.environment": ["Environment"],
    "rlbench.task_environment": ["TaskEnvironment"],
    "rlbench.observation_config": ["CameraConfig", "ObservationConfig"],
    "rlbench.action_modes.action_mode": ["MoveArmThenGripper"],
    "rlbench.action_modes.arm_action_modes": ["EndEffectorPoseViaPlanning"],
    "rlbench.action_modes.gripper_action_modes": ["Discrete"],
    "rlbench.backend.exceptions": ["InvalidActionError", "TaskEnvironmentError"],
    "rlbench.backend.observation": ["Observation"],
    "rlbench.backend.scene": ["Scene"],
    "rlbench.demo": ["Demo"],
}
FUNCTIONS = {
    "rlbench.backend.utils": ["task_file_to_task_class"],
    "rlbench.utils": ["get_stored_demos"],
}


def pinned_commits(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The PyRep and RLBench commits docker/Dockerfile.rlbench builds (its ARG defaults)."""
    text = dockerfile.read_text()
    return {key: re.search(rf"^ARG {arg}=([0-9a-f]+)$", text, re.M).group(1) for key, arg in COMMIT_ARGS.items()}


def signature(fn: ast.FunctionDef) -> list[str]:
    """Parameters as written in Python: `name`, `name=default`, `*`, `*args`, `**kwargs` (positional-only not used)."""
    args = fn.args

    def written(arg: ast.arg, default: ast.expr | None) -> str:
        return arg.arg if default is None else f"{arg.arg}={ast.unparse(default)}"

    defaults = [None] * (len(args.args) - len(args.defaults)) + args.defaults
    params = [written(a, d) for a, d in zip(args.args, defaults, strict=True)]
    if args.vararg:
        params.append(f"*{args.vararg.arg}")
    elif args.kwonlyargs:
        params.append("*")
    params += [written(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg:
        params.append(f"**{args.kwarg.arg}")
    return params


def describe_class(name: str, tree: ast.Module) -> dict:
    """Bases, public methods (own and inherited from classes of the same file), __init__, attributes set there."""
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    node = classes[name]
    chain = [node]
    while chain[-1].bases and isinstance(chain[-1].bases[0], ast.Name) and chain[-1].bases[0].id in classes:
        chain.append(classes[chain[-1].bases[0].id])
    methods: dict[str, ast.FunctionDef] = {}
    for cls in reversed(chain):
        methods.update({f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)})
    out = {"bases": [ast.unparse(b) for b in node.bases],
           "methods": {m: signature(f) for m, f in sorted(methods.items()) if not m.startswith("_") or m == "__init__"}}
    if "__init__" in methods:
        out["attributes"] = sorted({t.attr for stmt in ast.walk(methods["__init__"]) if isinstance(stmt, ast.Assign)
                                    for t in stmt.targets if isinstance(t, ast.Attribute)
                                    and isinstance(t.value, ast.Name) and t.value.id == "self"})
    members = [t.id for stmt in node.body if isinstance(stmt, ast.Assign)
               for t in stmt.targets if isinstance(t, ast.Name)]
    if members:
        out["members"] = members
    return out


def read_source(git_dir: str, commit: str, module: str) -> ast.Module:
    path = module.replace(".", "/") + ".py"
    text = subprocess.run(["git", "--git-dir", git_dir, "show", f"{commit}:{path}"], check=True,
                          capture_output=True, text=True).stdout
    return ast.parse(text)


def build(git_dirs: dict[str, str]) -> dict:
    commits = pinned_commits()
    manifest = {"sources": {k: {"repository": REPOSITORIES[k], "commit": commits[k]} for k in REPOSITORIES},
                "classes": {}, "functions": {}}
    for module, names in CLASSES.items():
        tree = read_source(git_dirs[module.split(".")[0]], commits[module.split(".")[0]], module)
        for name in names:
            manifest["classes"][f"{module}.{name}"] = describe_class(name, tree)
    for module, names in FUNCTIONS.items():
        tree = read_source(git_dirs[module.split(".")[0]], commits[module.split(".")[0]], module)
        found = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        for name in names:
            manifest["functions"][f"{module}.{name}"] = signature(found[name])
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyrep", required=True, help="git directory of stepjam/PyRep")
    parser.add_argument("--rlbench", required=True, help="git directory of MohitShridhar/RLBench")
    args = parser.parse_args()
    text = json.dumps(build({"pyrep": args.pyrep, "rlbench": args.rlbench}), indent=1)
    one_line = lambda m: "[" + re.sub(r"\n\s*", " ", m.group(1)) + "]"  # noqa: E731
    MANIFEST.write_text(re.sub(r"\[\n\s*([^\[\]{}]*?)\n\s*\]", one_line, text) + "\n")
    print(f"written: {MANIFEST}")


if __name__ == "__main__":
    main()
