"""No module of the skycheck package imports one that imports it back, however indirectly.

The imports are read from the source with ``ast``, not by importing: every ``import`` and
``from ... import`` counts, at module level, inside functions (the lazy imports that keep
``--help`` and offline runs light) and under ``if TYPE_CHECKING:``, because a cycle that
only a lazy import closes is still two modules that cannot be understood one without the
other. ``from skycheck.x import y`` is an edge to ``skycheck.x.y`` when that is a module,
else to ``skycheck.x``. A package is not counted as imported by its own submodules'
imports (``skycheck.rbac.model`` does not depend on ``skycheck/rbac/__init__.py``, which
only re-exports).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import skycheck

PACKAGE = Path(skycheck.__file__).resolve().parent


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that module ``name`` (source at ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        out.update(t for t in targets if t in known and t != name)
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imported(name, path, known) for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None (depth-first, colouring)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_skycheck_package_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) > 30 and "skycheck.cli" in graph  # the walk found the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / next(iter(files)).split("/")[0]


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        (  # module level, both ways
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "import pkg.b\n",
                "pkg/b.py": "from pkg import a\n",
            },
            ["pkg.a", "pkg.b", "pkg.a"],
        ),
        (  # closed only by a lazy import inside a function, through a third module
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "from pkg.b import f\n",
                "pkg/b.py": "from pkg.sub.c import g\n\ndef f():\n    return g\n",
                "pkg/sub/__init__.py": "",
                "pkg/sub/c.py": "def g():\n    from .. import a\n    return a\n",
            },
            ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"],
        ),
        (  # closed by an import for the type checker only
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "from pkg.b import B\n",
                "pkg/b.py": (
                    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n"
                ),
            },
            ["pkg.a", "pkg.b", "pkg.a"],
        ),
    ],
    ids=["module-level", "lazy-relative", "type-checking"],
)
def test_a_cycle_is_found_and_reported(tmp_path: Path, files: dict[str, str], cycle: list[str]):
    assert find_cycle(import_graph(_write(tmp_path, files))) == cycle


def test_a_package_facade_and_one_way_imports_are_not_a_cycle(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub import thing\n",
            "pkg/sub/__init__.py": "from pkg.sub.model import thing\nfrom pkg.sub.use import use\n",
            "pkg/sub/model.py": "import os\nthing = 1\n",
            "pkg/sub/use.py": "from pkg.sub.model import thing\n\ndef use():\n    return thing\n",
        },
    )
    graph = import_graph(root)
    assert graph["pkg.sub.use"] == {"pkg.sub.model"}
    assert graph["pkg.sub"] == {"pkg.sub.model", "pkg.sub.use"}
    assert find_cycle(graph) is None
