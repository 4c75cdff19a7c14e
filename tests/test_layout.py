"""The package's shape (ARCHITECTURE.md): imports form no circle, not even through imports inside
functions (imports under `if TYPE_CHECKING:` are for annotations only and do not count), and nothing
outside `extractor.cli` (but `python -m extractor`) imports from it."""

from __future__ import annotations

import ast
from pathlib import Path

import extractor

PACKAGE = Path(extractor.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every module of the package that `path` imports, at any depth, outside `if TYPE_CHECKING:`."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target in modules:
                found.add(target)
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    found.add(f"{target}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules) for p in paths}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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
            connect(node)
    return found


def test_the_walker_sees_imports_inside_functions_and_skips_type_checking(tmp_path: Path) -> None:
    graph = _graph()
    # known edges of the real package, one of each kind
    assert "extractor.client.extractor" in graph["extractor"]  # module level, relative
    assert any(name.startswith("extractor.runs.") for name in graph["extractor.client.extractor"])  # in a function
    assert "extractor.client.extractor" not in graph["extractor.runs.runner"]  # TYPE_CHECKING only
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles() -> None:
    assert _circles(_graph()) == []


def _in_cli(name: str) -> bool:
    return name == "extractor.cli" or name.startswith("extractor.cli.")


def test_nothing_outside_the_cli_imports_it() -> None:
    offenders = {
        module: sorted(name for name in imported if _in_cli(name))
        for module, imported in _graph().items()
        if not _in_cli(module) and module != "extractor.__main__"  # `python -m extractor` is the command
    }
    assert {module: names for module, names in offenders.items() if names} == {}


#: the layers, lowest first (ARCHITECTURE.md): a module imports only from its own layer and those below
LAYERS: tuple[tuple[str, ...], ...] = (
    ("extractor._jsonpath", "extractor._shape", "extractor.errors", "extractor._canonical", "extractor._secret"),
    ("extractor._version", "extractor._portal", "extractor.bundled"),
    ("extractor.output",),
    ("extractor.schema",),
    ("extractor.sources",),
    ("extractor.results",),
    ("extractor.observe",),
    ("extractor.documents",),
    ("extractor.client",),
    ("extractor.runs",),
    ("extractor.quality",),
    ("extractor.testing",),
    ("extractor.cli",),
    ("extractor", "extractor.ray", "extractor.__main__"),  # the public faces
)
#: the one way up: the facade's `extract_many` and `submit_batch` hand the work to the runs layer
UPWARD = {
    ("extractor.client.extractor", "extractor.runs.runner"),
    ("extractor.client.extractor", "extractor.runs.provider"),
}


def _layer(module: str) -> int:
    best = -1, -1
    for number, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[1]:
                best = number, len(prefix)
    assert best[0] >= 0, f"{module} is in no layer: add it to LAYERS (and ARCHITECTURE.md)"
    return best[0]


def test_imports_flow_down_the_layers() -> None:
    upward = sorted(
        (module, name)
        for module, imported in _graph().items()
        for name in imported
        if _layer(name) > _layer(module) and (module, name) not in UPWARD
    )
    assert upward == []
