"""The package's shape, read from its source: no import cycle, small modules and functions, no private reach-ins.

These read the modules' own ``import`` statements (function-level imports included; imports under
``if TYPE_CHECKING:`` are not run, so they cannot form a cycle) instead of importing anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "drf_oidc_jwks"
MAX_MODULE_LINES = 420  # "about 400"
MAX_FUNCTION_LINES = 65  # "about 60"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for orelse in node.orelse for n in _runtime_imports(ast.Module([orelse], [])))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _runtime_imports(node)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    if not MODULES[module].name == "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _targets(module: str) -> Iterator[tuple[str, list[str]]]:
    """(imported package module, names imported from it) for each runtime import inside the package."""
    tree = ast.parse(MODULES[module].read_text())
    for node in _runtime_imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "drf_oidc_jwks":
                    yield alias.name, []
            continue
        target = _resolve(module, node)
        if target.split(".")[0] != "drf_oidc_jwks":
            continue
        names = [a.name for a in node.names]
        submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
        yield from ((sub, []) for sub in submodules)
        yield target, [n for n in names if f"{target}.{n}" not in MODULES]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _ in _targets(module):
            if target in MODULES and target != module and target != "drf_oidc_jwks":
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_conf_is_a_leaf_that_reaches_only_the_settings_table_and_claim_paths() -> None:
    # Whatever conf imports, directly or not, is the settings table and the claim-path grammar, which
    # import nothing else of the package: conf never pulls in the modules that read the settings.
    assert _reachable(_graph(), "drf_oidc_jwks.conf") <= {
        "drf_oidc_jwks.settings_keys",
        "drf_oidc_jwks.settings_values",
        "drf_oidc_jwks.settings_opaque",
        "drf_oidc_jwks.claim_paths",
    }


def test_no_module_imports_another_modules_private_names() -> None:
    reach_ins = [
        f"{module} imports {name} from {target}"
        for module in MODULES
        for target, names in _targets(module)
        for name in names
        if name.startswith("_") and not name.startswith("__") and target != module
    ]
    assert reach_ins == []


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for module, path in MODULES.items():
        source = path.read_text()
        lines = source.count("\n")
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{module}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{module}.{node.name}: {length} lines")
    assert too_long == []


def test_library_code_has_no_assert_statement() -> None:
    found = [
        f"{module}:{node.lineno}"
        for module, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assert)
    ]
    assert found == []
