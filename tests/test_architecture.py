"""The package's shape, checked from its source: front ends on the public API, no import cycles, small modules."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import edgekit

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(edgekit.__file__).parent
#: modules a front end may import besides ``edgekit`` itself: the error hierarchy, atomic writes, the declared
#: dependencies (a missing extra named before work), the CLI's own renderers and command modules, and the GUI's
#: entry point (``edgekit gui``)
FRONT_END_MODULES = {"edgekit", "edgekit.errors", "edgekit.atomic", "edgekit.dependencies", "edgekit.cli_errors", "edgekit.quiet", "edgekit.console",
                     "edgekit.profiling.console", "edgekit.divergence.cli", "edgekit.agent.cli", "edgekit.tune.cli", "edgekit.clean", "edgekit.cli_data", "edgekit.data_console", "edgekit.gui.app",
                     "edgekit.tune.ray_node", "edgekit.cli_inspect", "edgekit.console_artifact"}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def _front_end_files() -> list[Path]:
    return [*sorted((ROOT / "gui").glob("*.py")), PACKAGE / "cli.py"]


def _edgekit_imports(tree: ast.AST) -> list[tuple[int, str, list[str]]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "edgekit":
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names if alias.name.split(".")[0] == "edgekit"]
    return found


@pytest.mark.parametrize("path", _front_end_files(), ids=lambda p: p.name)
def test_front_ends_use_only_the_public_api(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    private = [f"{path.name}:{line} {module}" for line, module, _ in _edgekit_imports(tree)
               if module not in FRONT_END_MODULES and not (path.parent.name == "gui" and module.startswith("edgekit.gui"))]
    assert private == []
    public = set(edgekit.__all__)
    named = [name for _, module, names in _edgekit_imports(tree) if module == "edgekit" for name in names]
    used = [node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "edgekit"]
    assert sorted(set(named + used) - public) == []


def test_every_public_name_resolves_and_has_a_docstring():
    for name in edgekit.__all__:
        value = getattr(edgekit, name)
        if callable(value) and name != "EdgekitError":
            assert (value.__doc__ or "").strip(), name


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "gui" not in p.relative_to(PACKAGE).parts[:1]}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The edgekit modules ``name`` imports, at module level or inside functions (not under ``if TYPE_CHECKING``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    pending: list[ast.AST] = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.update(c for c in [base, *(f"{base}.{alias.name}" for alias in node.names)] if c in known)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        pending.extend(ast.iter_child_nodes(node))
    found.discard(name)
    return found


def test_no_import_cycles():
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(path, name, known) for name, path in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def _sources() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *(ROOT / "converters").glob("*.py"), *(ROOT / "gui").glob("*.py")])


def test_no_module_is_too_long():
    long = {p.relative_to(ROOT).as_posix(): n for p in _sources()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_is_too_long():
    long = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT).as_posix()}:{node.lineno} {node.name}"] = lines
    assert long == {}
