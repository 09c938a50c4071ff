"""The layers (issue 28): only omsup/adapters/ talks to the outside. Steps, the probe's checks, the CLI, the status,
the executor and the plugin call adapter verbs; no command, statement or request is written anywhere else.

The same check by hand: grep -rnE "^(import|from) (subprocess|urllib|pymysql|docker|http)|metadb\\.(query|execute)\\(|\\.exec\\(|\\.run\\(\\"|host\\.run\\(|\\bcheck\\(\\"" omsup --include=*.py | grep -v omsup/adapters/
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

OMSUP = Path(__file__).resolve().parents[2] / "omsup"
OUTSIDE = {"subprocess", "urllib", "pymysql", "docker", "http", "requests", "paramiko", "testinfra"}
# the raw verbs by which adapters reach outside (a statement, a command line): never called outside omsup/adapters/
RAW_CALLS = {
    ("metadb", "query"),
    ("metadb", "execute"),
    ("metadb", "_exec"),
    ("engines", "exec"),
    ("hosts", "run"),
    ("hosts", "check"),
    ("host", "run"),
    ("host", "check"),
    ("backup_host", "run"),
    ("backup_host", "check"),
}
RAW_METHODS = {"run_local", "urlopen", "_request", "_post", "_call"}


def modules() -> list[Path]:
    return [p for p in OMSUP.rglob("*.py") if "adapters" not in p.parts]


def test_only_the_adapters_import_what_reaches_outside():
    found = []
    for p in modules():
        for node in ast.walk(ast.parse(p.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                if name.split(".")[0] in OUTSIDE and not (p.name == "redact.py" and name == "urllib.parse"):
                    found.append(f"{p.relative_to(OMSUP.parent)}:{node.lineno} imports {name}")
    assert not found, "\n".join(found)


def test_no_statement_or_command_is_run_outside_the_adapters():
    found = []
    for p in modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value
            if isinstance(owner, ast.Subscript):  # run.engines[n].exec(...)
                owner = owner.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if (owner_name, node.func.attr) in RAW_CALLS or node.func.attr in RAW_METHODS:
                found.append(f"{p.relative_to(OMSUP.parent)}:{node.lineno} calls {owner_name}.{node.func.attr}(...)")
    assert not found, "\n".join(found)


def test_the_reports_categories_come_from_the_error_classes():
    from omsup import errors
    from omsup.report import categories

    cats = {c["name"]: c.get("messageRegex", "") for c in categories()}
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.OmsupError)]
    for cls in classes:
        if cls is not errors.OmsupError:
            assert cls.category in cats and cls.__name__ in cats[cls.category], cls
    assert list(cats)[0] == "Interrupted" and list(cats)[-1] == "Check failed"


def _top_level_graph() -> dict[str, set[str]]:
    """omsup's modules and what each imports when it is loaded (module level, TYPE_CHECKING blocks aside)."""
    mods = {}
    for p in OMSUP.rglob("*.py"):
        parts = p.relative_to(OMSUP.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.parse(p.read_text()).body:
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = pkg
            for _ in range(node.level - 1):
                base = base.rsplit(".", 1)[0]
            target = f"{base}.{node.module}" if node.module else base
            # `from . import x` loads the submodule x; `from .mod import name` loads mod (and its packages)
            found = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods] or [target]
            graph[m].update(t for t in found if t in mods and t != m)
    return graph


def test_no_import_circles():
    """No module needs, while it loads, a module that needs it back (a circle dodged by a function-local import is
    said below): tarjan's strongly connected components of the module-level import graph are all single."""
    graph = _top_level_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, circles


def test_function_local_imports_are_few_and_each_says_why():
    """A function-local import is allowed where it saves start-up time (the CLI's commands) and says so on the line
    above its group: '# imported here: ...'."""
    found = []
    for p in OMSUP.rglob("*.py"):
        lines = p.read_text().splitlines()
        for fn in ast.walk(ast.parse(p.read_text())):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    i = node.lineno - 2
                    while i >= 0 and re.match(r"\s*(from \S+ )?import ", lines[i]):
                        i -= 1
                    if i < 0 or "# imported here:" not in lines[i]:
                        found.append(f"{p.relative_to(OMSUP.parent)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not found, "\n".join(found)


def test_every_assumption_but_the_manual_ones_has_its_check():
    from omsup.assumptions import ASSUMPTIONS
    from omsup.steps.assumption_checks import CHECKS

    assert set(CHECKS) == {a.key for a in ASSUMPTIONS if a.kind != "manual"}
