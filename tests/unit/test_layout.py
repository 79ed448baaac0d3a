"""The layout of ``src/crm_es`` (docs/architecture.md): rooms import only the rooms below them,
no module imports another in a circle, no private name crosses a module, modules stay small and
every class name is used once. Read from the source with ``ast``: imports inside functions and
under ``TYPE_CHECKING`` count like any other."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "src" / "crm_es"
MAX_LINES = 400
# What each room may import (besides itself and the standard library and third parties).
ALLOWED = {
    "domain": set(),
    "analytics": set(),
    "store": {"domain"},
    "app": {"store", "domain"},
    "audit": {"store", "domain"},
    "projections": {"store", "domain"},
    "reports": {"projections", "analytics", "store", "domain"},
    "demo": {"domain", "reports"},
    "cli": {"app", "audit", "projections", "reports", "analytics", "store", "domain", "demo"},
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, str]]:
    """(imported module, imported name) of every import in the module, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                out.append((target if target in known else base, alias.name))
        elif isinstance(node, ast.Import):
            out.extend((alias.name, "") for alias in node.names)
    return [(m, n) for m, n in out if m in known and m != name]


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = {m for m, _ in imports(name, path, known)}
        if path.name == "__init__.py":  # a package re-exporting its own modules
            targets = {m for m in targets if not m.startswith(name + ".")}
        edges[name] = targets
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
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
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_module_imports_another_in_a_circle() -> None:
    assert circles(graph()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_room_imports_only_the_rooms_below_it() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        for target in targets
        if room(module) in ALLOWED
        and room(target) != room(module)
        and room(target) not in ALLOWED[room(module)]
    ]
    assert wrong == []


def test_no_private_name_is_imported_from_another_module() -> None:
    known = modules()
    private = [
        f"{name} imports {imported} from {module}"
        for name, path in known.items()
        for module, imported in imports(name, path, known)
        if imported.startswith("_") and not imported.startswith("__")
    ]
    assert private == []


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_two_classes_share_a_name() -> None:
    names: Counter[str] = Counter()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names.update(node.name for node in tree.body if isinstance(node, ast.ClassDef))
    assert [name for name, count in names.items() if count > 1] == []
