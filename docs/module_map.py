"""Write the module map the architecture page shows: `docs/snippets/module_map.txt`.

The map is read from the code. A module's arrows are the project modules it imports when it
runs (at its top or inside a function); imports under `if TYPE_CHECKING:` only name types and
are not arrows. An arrow that a longer path already implies is left out (the map stays
readable; the order is the same). `python docs/module_map.py` rewrites the file, and the docs
tests fail while it differs from the code (`tests/docs/test_snippets.py`).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "snippets" / "module_map.txt"

#: The modules drawn, by package. Left out: each package's `__init__` (it re-exports names),
#: the CLI and playgrounds, and the helpers every layer of `aiostep_dialogs` uses
#: (`i18n`, `injection`, `validators`, `formatting`), which import nothing of the Wizard.
DRAWN = {
    "aiostep": (
        "middleware", "conversation", "waiters", "steps", "handover", "scheduler", "context",
        "pending", "meta_store", "step_registry", "storage", "filters", "keys", "deadlines",
        "ordering", "calling", "clock", "exceptions",
    ),
    "aiostep_dialogs": (
        "wizard", "setup", "runtime", "calls", "render", "picking", "registry", "record",
        "ui", "button_data", "graph", "compiling", "running", "spec", "sources", "choices",
        "requests", "media", "timeouts",
    ),
    "aiostep.testing": (
        "pytest_plugin", "simulator", "conversation", "updates", "session", "emulation",
        "telegram", "entities", "fake_clock", "redis_server",
    ),
}  # fmt: skip


def module_names(package: str) -> list[str]:
    """Every module of ``package``: its files (without ``__init__``/``__main__``) and its
    subpackages (drawn as one module each)."""
    folder = ROOT / package.replace(".", "/")
    files = [p.stem for p in folder.glob("*.py") if not p.stem.startswith("__")]
    folders = [p.name for p in folder.iterdir() if (p / "__init__.py").is_file()]
    return sorted(files + folders)


def _sources(package: str, name: str) -> list[Path]:
    path = ROOT / package.replace(".", "/") / name
    return sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]


def runtime_imports(tree: ast.Module) -> Iterator[str]:
    """The modules ``tree`` imports when it runs: not those under ``if TYPE_CHECKING:``."""
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(child) for child in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"


def imports(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` -> the modules of ``package`` it imports when it runs."""
    names = module_names(package)
    found: dict[str, set[str]] = {name: set() for name in names}
    for name in names:
        trees = [ast.parse(path.read_text(encoding="utf-8")) for path in _sources(package, name)]
        for imported in (found for tree in trees for found in runtime_imports(tree)):
            if imported.startswith(package + "."):
                target = imported[len(package) + 1 :].split(".")[0]
                if target in found and target != name:
                    found[name].add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph`` (each as a path that comes back to its start)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return False


def drawn_edges(package: str) -> list[tuple[str, str]]:
    """The arrows drawn for ``package``: between drawn modules, none implied by a longer path."""
    graph = imports(package)
    drawn = set(DRAWN[package])
    edges = []
    for source in sorted(drawn):
        for target in sorted(graph[source] & drawn):
            others = {graph_node for graph_node in graph[source] if graph_node != target}
            if not any(_reaches(graph, other, target) for other in others):
                edges.append((source, target))
    return edges


def render() -> str:
    """The Mermaid source of the map: one box per package."""
    lines = ["graph TD"]
    for package, drawn in DRAWN.items():
        box = package.replace(".", "_")
        lines.append(f"  subgraph {box}[{package}]")
        lines.extend(f"    {box}__{name}[{name}]" for name in drawn)
        lines.append("  end")
        lines.extend(
            f"  {box}__{source} --> {box}__{target}" for source, target in drawn_edges(package)
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {TARGET.relative_to(ROOT)}\n")
