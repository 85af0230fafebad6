"""The package's imports run one way (README, Layout): read from the source with ast, every import
counted, those inside functions too.

- no circle between edgekit's modules, except graph <-> reference (the IR and its float execution);
- an import inside a function is there for a reason written beside it (`# lazy: <why>`: it delays a
  heavy dependency such as onnx, or it is that one allowed circle), never to hide a circle;
- no module imports another package's private name (a leading underscore).
"""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ALLOWED_CIRCLES = [{"edgekit.graph", "edgekit.reference"}]


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in SRC.rglob("*.py")}


def _imports(name: str):
    """(imported module, imported names, node, inside a function) for every edgekit import of `name`."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f)}
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("edgekit"):
                    yield a.name, [], node, id(node) in in_function
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if not module.startswith("edgekit"):
                continue
            names = [a.name for a in node.names]
            for n in names:  # `from . import budget` imports the module edgekit.budget
                if f"{module}.{n}" in MODULES:
                    yield f"{module}.{n}", [], node, id(node) in in_function
            rest = [n for n in names if f"{module}.{n}" not in MODULES]
            if rest:
                yield module, rest, node, id(node) in in_function


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_circles_but_the_allowed_one():
    circles = _circles(_graph())
    assert [c for c in circles if c not in ALLOWED_CIRCLES] == [], circles


def test_the_circle_check_sees_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_imports_inside_functions_say_why():
    unexplained = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        for _, _, node, inside in _imports(name):
            if inside and "# lazy:" not in lines[node.lineno - 1]:
                unexplained.append(f"{path.relative_to(SRC)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not unexplained, "move these imports to the top of the module, or say why they wait (# lazy: ...):\n" + \
        "\n".join(sorted(set(unexplained)))


def _package(module: str) -> str:
    return module if (MODULES[module].name == "__init__.py") else module.rsplit(".", 1)[0]


def test_no_module_takes_another_packages_private_names():
    taken = []
    for name in MODULES:
        for target, names, node, _ in _imports(name):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if target in MODULES and private and _package(target) != _package(name):
                taken.append(f"{name} takes {', '.join(private)} from {target}")
    assert not taken, taken


@pytest.mark.parametrize("lower, upper", [
    ("edgekit.targets", ("edgekit.sim", "edgekit.protocol", "edgekit.backends", "edgekit.capture", "edgekit.sketch",
                         "edgekit.pi", "edgekit.deployment", "edgekit.cli", "edgekit.olympics")),
    ("edgekit.sim", ("edgekit.protocol", "edgekit.backends", "edgekit.capture", "edgekit.sketch", "edgekit.pi",
                     "edgekit.deployment", "edgekit.cli", "edgekit.olympics")),
    ("edgekit.profile_report", ("edgekit.sim", "edgekit.backends", "edgekit.deployment", "edgekit.cli")),
])
def test_the_hardware_side_looks_only_down(lower, upper):
    graph = _graph()
    up = sorted(f"{m} -> {t}" for m in graph if m == lower or m.startswith(lower + ".")
                for t in graph[m] if any(t == u or t.startswith(u + ".") for u in upper))
    assert not up, up
