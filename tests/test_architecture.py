"""The package's import graph: modules depend one way, so each reads without the ones above it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import neuralstyle

PACKAGE = Path(neuralstyle.__file__).parent


def _imports(path: Path) -> set[str]:
    """The neuralstyle modules ``path`` imports anywhere, ``TYPE_CHECKING`` blocks included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("neuralstyle")
        ):
            if node.module == "neuralstyle":  # from neuralstyle import inputs, optimize
                found.update(f"neuralstyle.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("neuralstyle."))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {f"neuralstyle.{path.stem}": path for path in PACKAGE.glob("*.py")}
    modules.pop("neuralstyle.__init__")  # re-exports everything, imported by nothing inside
    return {name: _imports(path) & modules.keys() for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path, or None (depth-first search)."""
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        path.append(name)
        for child in sorted(graph[name]):
            found = visit(child)
            if found:
                return found
        path.pop()
        done.add(name)
        return None

    for name in sorted(graph):
        found = visit(name)
        if found:
            return found
    return None


def _torch_imports(path: Path) -> set[str]:
    """Every torch module ``path`` imports anywhere (``from torch import x`` counts as ``torch.x``:
    it may name a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "torch" or name.startswith("torch.")}


def _private(module: str) -> bool:
    """Whether a dotted module path has a private part (``torch._C``, ``torch.utils._pytree``);
    dunder names (``torch.__config__``) are public."""
    return any(
        part.startswith("_") and not (part.startswith("__") and part.endswith("__"))
        for part in module.split(".")
    )


def test_the_private_module_check_tells_them_apart() -> None:
    assert _private("torch._dynamo")
    assert _private("torch.utils._python_dispatch.TorchDispatchMode")
    assert not _private("torch.overrides.TorchFunctionMode")
    assert not _private("torch.__config__")


def test_no_module_imports_a_private_torch_module() -> None:
    # Private modules change without notice between releases; everything here, the memory
    # probe included, is built on torch's public API.
    paths = sorted(PACKAGE.rglob("*.py"))
    assert any(path.name == "memory.py" for path in paths)  # the package was read
    private = {
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in paths
        for module in _torch_imports(path)
        if _private(module)
    }
    assert not private, sorted(private)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _graph()
    assert "neuralstyle.transfer" in graph  # the graph was read
    assert "neuralstyle.objective" in graph["neuralstyle.run"]
    assert _cycle(graph) is None


def test_the_loop_does_not_depend_on_style_transfer() -> None:
    graph = _graph()
    for module in ("run", "tiled_scale", "memory", "optimize", "objective", "inputs"):
        assert "neuralstyle.transfer" not in graph[f"neuralstyle.{module}"], module


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("neuralstyle.image", "save_image", "neuralstyle.image_output"),
        ("neuralstyle.image", "to_pil", "neuralstyle.image_output"),
        ("neuralstyle.image", "check_output_path", "neuralstyle.image_output"),
        ("neuralstyle.image", "example_image", "neuralstyle.examples"),
        ("neuralstyle.image", "example_images", "neuralstyle.examples"),
        ("neuralstyle.tiling", "TiledScale", "neuralstyle.tiled_scale"),
    ],
)
def test_a_moved_name_still_imports_from_its_old_module_with_a_warning(
    old: str, name: str, new: str
) -> None:
    with pytest.warns(DeprecationWarning, match=f"moved to {new}.{name}"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = importlib.import_module("neuralstyle.image").nothing
