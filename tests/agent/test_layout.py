"""The agent's modules read top to bottom: every import at the top (a deferred import hides a real
dependency), no import circle between them, none over ~400 lines."""
import ast
from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "agent"
MODULES = sorted(AGENT.rglob("*.py"))
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(AGENT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def agent_imports(path: Path) -> set[str]:
    """The agent modules `path` imports (`from . import x` and `from .x import y` alike)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base == "agent" or base.startswith("agent."):
                known = {module_name(p) for p in MODULES}
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    out.add(full if full in known else base)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("agent.")}
    return out - {name}


def test_no_import_is_hidden_inside_a_function():
    deferred = []
    for path in MODULES:
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                deferred += [f"{path.relative_to(AGENT.parent)}:{n.lineno}" for n in ast.walk(fn)
                             if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert deferred == []


def test_agent_modules_import_each_other_without_a_circle():
    graph = {module_name(p): agent_imports(p) for p in MODULES}
    done, path = set(), []

    def visit(node):
        if node in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(node):] + [node]))
        if node in done:
            return
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt != "agent":  # the package itself only holds __version__
                visit(nxt)
        path.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)
    assert graph["agent.collectors.pci"] >= {"agent.collectors.sriov", "agent.collectors.config_space"}


def test_no_agent_module_is_over_400_lines():
    long = {str(p.relative_to(AGENT.parent)): n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
