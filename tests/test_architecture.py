"""The shape of the code (issue 17): libraries live in hubui/libraries/, modules import in layers, none is huge.

Each test is one of the issue's "must show" checks, run as a user would run it (``git grep`` from the repo root),
with a failure that names every offending file, line, cycle or module.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HUBUI = ROOT / "hubui"
LIBRARIES = "hubui/libraries/"
MAX_LINES = 550

# The two greps. ``git grep -E`` has no ``\s`` / ``\b`` everywhere, so the POSIX spellings; the second is
# stricter than the (an indented import, inside a function, counts too).
LIBRARY_NAME = r"\"(timm|open_clip)\""
LIBRARY_IMPORT = r"^[[:space:]]*(import|from) (timm|open_clip|transformers)([^A-Za-z0-9_]|$)"
_PY_EQUIVALENT = {LIBRARY_NAME: LIBRARY_NAME, LIBRARY_IMPORT: r"^\s*(import|from) (timm|open_clip|transformers)\b"}


def _grep(pattern: str) -> list[str]:
    """``git grep -nE pattern hubui`` (untracked files too: a new module counts before it is committed) as
    ``path:line:text`` lines; without git, the same regex over the files."""
    if shutil.which("git") and (ROOT / ".git").exists():
        result = subprocess.run(
            ["git", "grep", "--untracked", "-nE", pattern, "--", "hubui"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode in (0, 1), result.stderr  # 1: no hit
        return result.stdout.splitlines()
    regex = re.compile(_PY_EQUIVALENT[pattern])
    return [
        f"{path.relative_to(ROOT).as_posix()}:{number}:{line}"
        for path in sorted(HUBUI.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if regex.search(line)
    ]


def _outside_libraries(lines: list[str]) -> list[str]:
    return [line for line in lines if not line.startswith(LIBRARIES)]


def test_library_names_appear_only_in_the_libraries_package():
    hits = _grep(LIBRARY_NAME)
    outside = _outside_libraries(hits)
    assert not outside, "library names outside hubui/libraries/:\n" + "\n".join(outside)
    assert hits, "the grep found nothing at all (not even in hubui/libraries/): is the pattern broken?"


def test_only_the_libraries_package_imports_a_library():
    hits = _grep(LIBRARY_IMPORT)
    outside = _outside_libraries(hits)
    assert not outside, "library imports outside hubui/libraries/:\n" + "\n".join(outside)
    assert hits, "the grep found nothing at all (not even in hubui/libraries/): is the pattern broken?"


# --- the import graph ----------------------------------------------------------------------------------
def _modules() -> dict[str, Path]:
    found = {}
    for path in HUBUI.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth (a function's own imports run too), except under ``if TYPE_CHECKING:``
    (never run)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the hubui modules it imports.

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``. Edges to the root
    package ``hubui`` are left out: it is the public façade that re-exports every module, and a core module's
    lazy ``from hubui import __version__`` reads it after it is fully imported (it is not a layer).
    """
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target == "hubui" or not target.startswith("hubui."):
                    continue
                found = owner(target)
                if found and found not in (module, "hubui"):
                    graph[module].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    # The check below must be able to fail: a graph with a known circle, and function-level / TYPE_CHECKING rules.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import hubui.x\nelse:\n    import hubui.y\n"
        "def f():\n    from hubui import z\n"
    )
    assert [ast.unparse(n) for n in _imports(tree)] == [
        "from typing import TYPE_CHECKING",
        "import hubui.y",
        "from hubui import z",
    ]


def test_no_import_cycle_among_hubui_modules():
    graph = import_graph()
    assert graph.get("hubui.pipeline"), "the import graph is empty: is the parser broken?"
    found = cycles(graph)
    described = [" <-> ".join(c) + f"  (edges: {sorted((a, b) for a in c for b in graph[a] if b in c)})" for c in found]
    assert not described, "import cycles:\n" + "\n".join(described)


def test_no_module_over_the_line_limit():
    counts = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in HUBUI.rglob("*.py")
    }
    assert len(counts) > 20
    over = {path: n for path, n in sorted(counts.items()) if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines:\n" + "\n".join(f"{path}: {n}" for path, n in over.items())


# --- the registry --------------------------------------------------------------------------------------
def test_every_library_module_defines_protocol_objects():
    import importlib

    from hubui.libraries import LIBRARY_MODULES
    from hubui.libraries.base import Format, Source

    assert LIBRARY_MODULES, "no library registered"
    for name, module_name in LIBRARY_MODULES.items():
        module = importlib.import_module(module_name)
        source, fmt = getattr(module, "SOURCE", None), getattr(module, "FORMAT", None)
        assert source is not None or fmt is not None, f"{module_name} defines neither SOURCE nor FORMAT"
        if source is not None:
            assert isinstance(source, Source), f"{module_name}.SOURCE is not a Source"
            assert source.name == name, f"{module_name}.SOURCE.name is {source.name!r}, registered as {name!r}"
        if fmt is not None:
            assert isinstance(fmt, Format), f"{module_name}.FORMAT is not a Format"
            assert fmt.name == name, f"{module_name}.FORMAT.name is {fmt.name!r}, registered as {name!r}"


def _library_modules_named_in(path: Path) -> list[str]:
    """Where ``path`` imports a module of hubui/libraries/ (its protocols, ``base``, aside), or names one in a
    string (what ``importlib.import_module`` would take)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    inner = re.compile(r"hubui\.libraries\.(?!base$|base\.)\w+")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "hubui.libraries":
            names = [f"{node.module}.{a.name}" for a in node.names if (HUBUI / "libraries" / f"{a.name}.py").exists()]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f"{node.lineno}: {node.value!r}"] if inner.fullmatch(node.value) else []
            continue
        else:
            continue
        found += [f"{node.lineno}: import {n}" for n in names if inner.match(n)]
    return found


# Old module paths kept for one release (CHANGELOG, issue 17): each only re-exports a library module's names.
DEPRECATED_ALIAS_MODULES = {HUBUI / "to_transformers.py"}


def test_the_registry_is_the_only_place_that_names_the_library_modules():
    from hubui.libraries import LIBRARY_MODULES

    registry = HUBUI / "libraries" / "__init__.py"
    assert set(LIBRARY_MODULES.values()) <= {v for _, v in _string_constants(registry)}, "registry names no module"
    # Outside hubui/libraries/ (hubui's core, the app and the Space) no code imports or names a library module:
    # the core finds them through the registry.
    files = [*HUBUI.rglob("*.py"), *ROOT.glob("*.py"), *(ROOT / "space").rglob("*.py")]
    hits = {
        str(path.relative_to(ROOT)): named
        for path in sorted(files)
        if not path.is_relative_to(HUBUI / "libraries") and path not in DEPRECATED_ALIAS_MODULES
        for named in [_library_modules_named_in(path)]
        if named
    }
    assert not hits, "library modules named outside the registry:\n" + "\n".join(
        f"{path}:{where}" for path, named in hits.items() for where in named
    )


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [(n.lineno, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


if __name__ == "__main__":  # pragma: no cover - `python tests/test_architecture.py` prints the cycles
    for cycle in cycles(import_graph()):
        print(cycle, file=sys.stdout)
    sys.exit(pytest.main([__file__, "-q"]))
