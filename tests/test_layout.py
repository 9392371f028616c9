"""The package layering that docs/development.md describes, read from the imports of every module."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mirror"
FOR_USERS = {"mirror.api", "mirror.cli"}


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"), path


def test_shared_packages_never_import_a_benchmark_and_nothing_imports_the_user_modules():
    for name, path in modules():
        found = imports(path)
        if not name.startswith(("mirror.benchmarks", "mirror.registry", "mirror.cli")):
            assert not any(m.startswith("mirror.benchmarks") for m in found), (name, found)
        if name not in ("mirror", "mirror.__main__", "mirror.cli"):
            assert not found & FOR_USERS, (name, found & FOR_USERS)


def test_no_module_is_over_400_lines():
    assert [p for _, p in modules() if len(p.read_text().splitlines()) > 400] == []


def test_every_benchmark_is_a_folder_with_its_data_module_and_demonstrations():
    from mirror.registry import BENCHMARKS

    for name, bench in BENCHMARKS.items():
        for target in (bench.data, bench.demos):
            module, _, attr = target.partition(":")
            source = (ROOT / Path(*module.split("."))).with_suffix(".py")
            assert module.startswith(f"mirror.benchmarks.{name}.") and source.is_file(), target
            assert f"def {attr}(" in source.read_text() or f"class {attr}(" in source.read_text(), target
