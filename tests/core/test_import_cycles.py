"""The package's imports have one direction.

Every module under `src/o2oloop` is read with `ast` (imports at module level and inside
functions alike) and its imports are drawn as a graph between folders, each top-level
package or module under `o2oloop` being one node. Then:

- no cycle between domain folders (the base layer and the composition roots are outside
  the graph: the base may import no domain, and no domain may import a root);
- the ledger, the bottom of the money thread, imports nothing but the base;
- no o2oloop module is imported inside a function (a hidden dependency, or a cycle
  dodged at import time) outside an allowlist in which each entry says why.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import o2oloop

PACKAGE = Path(o2oloop.__file__).parent

# Plumbing every domain stands on; it imports no domain. `auth` (principals, API keys) is
# here because every domain authorizes with it and it imports only plumbing.
BASE = frozenset(
    {
        "__init__",
        "auth",
        "clock",
        "combined",
        "config",
        "db",
        "errors",
        "events",
        "http",
        "jobs",
        "money",
        "pagination",
        "prepared",
        "validation",
    }
)
# Composition roots put the product together (the app, the CLI and `python -m o2oloop`, the
# wiring, the metadata, the migrations, the demo city driving every domain): they may import
# anything, and no domain or base module imports them.
ROOTS = frozenset({"__main__", "api", "bootstrap", "cli", "migrations", "models", "sim"})

# Function-level imports of o2oloop modules that are allowed, each with its reason.
LAZY_IMPORTS: dict[str, str] = {
    "o2oloop.cli": "a command imports its domain when it runs, so `o2oloop --help` starts fast",
}


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    imported: str  # dotted module name (a module or package that exists)
    line: int
    in_function: bool

    @property
    def edge(self) -> tuple[str, str]:
        return folder(self.importer), folder(self.imported)


def folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _exists(module: str) -> bool:
    base = PACKAGE.parent.joinpath(*module.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _targets(node: ast.Import | ast.ImportFrom, importer: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    module = node.module or ""
    if node.level:  # a relative import: resolve it against the importer's package
        package = importer.split(".")[: -node.level or None]
        module = ".".join([*package, module] if module else package)
    # `from o2oloop.x import y` imports o2oloop.x.y when y is a module, else o2oloop.x.
    names = [f"{module}.{alias.name}" for alias in node.names]
    found = [name for name in names if _exists(name)]
    return found if found else [module]


@functools.cache
def imports() -> list[Import]:
    found: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        inside = {
            id(sub)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            for sub in ast.walk(node)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _targets(node, importer):
                if target == "o2oloop" or target.startswith("o2oloop."):
                    found.append(Import(importer, target, node.lineno, id(node) in inside))
    return found


def _graph(found: list[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for item in found:
        source, target = item.edge
        if source == target or source in BASE | ROOTS or target in BASE | ROOTS:
            continue
        graph[source].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one folder (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _explain(found: list[Import], component: list[str]) -> str:
    members = set(component)
    lines = [
        f"  {item.importer}:{item.line} imports {item.imported}"
        for item in found
        if item.edge[0] in members and item.edge[1] in members and item.edge[0] != item.edge[1]
    ]
    return " ↔ ".join(component) + "\n" + "\n".join(sorted(set(lines)))


def test_the_walk_sees_every_kind_of_import() -> None:
    found = imports()
    assert len({item.importer for item in found}) > 100
    assert any(item.in_function for item in found)  # the CLI's lazy imports at least
    assert ("o2oloop.bootstrap", "o2oloop.payments.events") in {
        (item.importer, item.imported) for item in found
    }


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_cycle_between_domain_folders() -> None:
    found = imports()
    problems = [_explain(found, component) for component in cycles(_graph(found))]
    assert not problems, "import cycles between domain folders:\n" + "\n".join(problems)


def test_the_base_layer_imports_no_domain_and_no_domain_imports_a_root() -> None:
    wrong = sorted(
        f"{item.importer}:{item.line} imports {item.imported}"
        for item in imports()
        if (item.edge[0] in BASE and item.edge[1] not in BASE)
        or (item.edge[0] not in ROOTS and item.edge[1] in ROOTS)
    )
    assert not wrong, "\n".join(wrong)


def test_the_ledger_imports_no_other_domain() -> None:
    wrong = sorted(
        f"{item.importer}:{item.line} imports {item.imported}"
        for item in imports()
        if item.edge[0] == "ledger" and item.edge[1] not in BASE | {"ledger"}
    )
    assert not wrong, "\n".join(wrong)


def test_no_o2oloop_import_hides_inside_a_function() -> None:
    hidden = sorted(
        f"{item.importer}:{item.line} imports {item.imported}"
        for item in imports()
        if item.in_function and item.importer not in LAZY_IMPORTS
    )
    assert not hidden, "function-level imports of o2oloop modules:\n" + "\n".join(hidden)


def test_the_allowlists_name_imports_that_exist() -> None:
    assert all(_exists(module) for module in LAZY_IMPORTS)
    lazy = {item.importer for item in imports() if item.in_function}
    assert set(LAZY_IMPORTS) <= lazy, "remove the modules without lazy imports from the list"
