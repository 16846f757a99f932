"""The import graph holds its layers: selector ← annotate ← workers, and no cycles anywhere.

Walks every project module's AST, function-local imports included, so a cycle cannot hide
inside a function body. Run `python tests/test_layers.py` to print the graph's problems.
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "annotate", "selector", "workers")

# What each top-level package may not import (a prefix match on the imported module).
FORBIDDEN = {
    "selector": ("django", "rest_framework", "celery", "annotate", "workers", "config"),
    "annotate": ("workers", "celery"),
}


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(name: str, path: Path) -> list[str]:
    """Every module name `name` imports, absolute, including `from x import submodule`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append(module)
            found.extend(f"{module}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in imported_names(name, path) if m in modules and m != name}
    return graph


def layer_violations() -> list[str]:
    problems = []
    for name, path in project_modules().items():
        top = name.split(".")[0]
        for imported in imported_names(name, path):
            for banned in FORBIDDEN.get(top, ()):
                if imported == banned or imported.startswith(banned + "."):
                    problems.append(f"{name} imports {imported}")
                    break
    return sorted(set(problems))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
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


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_layers_hold():
    assert layer_violations() == []


def test_walker_sees_function_local_imports(tmp_path):
    module = tmp_path / "mod.py"
    module.write_text("def f():\n    from annotate.models import label\n")
    assert "annotate.models.label" in imported_names("selector.mod", module)


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


if __name__ == "__main__":
    for cycle in cycles(import_graph()):
        print("cycle:", " ↔ ".join(cycle))
    for violation in layer_violations():
        print("layer:", violation)
    sys.exit(0)
