"""The package's shape: no import cycle, method names only in their own modules, modules of a readable size.

These read the source (ast), so they fail on the code as written, whatever a run happens to import."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import hftl
from hftl.methods import method_names

PACKAGE = Path(hftl.__file__).parent
ROOT = PACKAGE.parent
MAX_MODULE_LINES = 400
MAX_RECIPE_LINES = 100


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _top_level_imports(tree: ast.Module):
    """Imports that run when the module is imported: at module level, also inside if/try blocks, but not
    under ``if TYPE_CHECKING`` and not inside functions or classes."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                stack.extend(handler.body)


def _targets(module: str, path: Path, node, modules: dict[str, Path]) -> set[str]:
    """The hftl modules an import statement loads (a ``from package import submodule`` names the submodule)."""
    found = set()
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = _resolve(module, path, node)
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    for name in names:
        if name in modules and name != module:
            found.add(name)
            # importing hftl.a.b first runs hftl/a/__init__.py: an edge to every package above it, except
            # the importer's own packages (already running when it imports a sibling)
            parts = name.split(".")
            for depth in range(2, len(parts)):
                package = ".".join(parts[:depth])
                if not module.startswith(package + ".") and package != module:
                    found.add(package)
    return found


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        graph[module] = set().union(*[_targets(module, path, n, modules) for n in _top_level_imports(tree)])
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as a list of modules, or None. A package importing its own submodules (its
    ``__init__``) and those importing siblings is no cycle unless a submodule imports the package back."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_cycle():
    assert _cycle(_import_graph()) is None, " -> ".join(_cycle(_import_graph()))


def test_the_cycle_check_finds_a_cycle():
    graph = {"hftl.a": {"hftl.b"}, "hftl.b": {"hftl.c"}, "hftl.c": {"hftl.a"}, "hftl.d": {"hftl.a"}}
    assert _cycle(graph) == ["hftl.a", "hftl.b", "hftl.c", "hftl.a"]
    assert _cycle({"hftl.a": {"hftl.b"}, "hftl.b": set()}) is None
    graph = _import_graph()  # importing hftl.methods.distill runs hftl/methods/__init__.py first
    assert {"hftl.methods.distill", "hftl.methods"} <= graph["hftl.api"]
    assert "hftl.methods" not in graph["hftl.methods.lora"]  # its own package is already running


def _function_level_hftl_imports() -> list[str]:
    modules = _modules()
    found = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        top = {id(node) for node in _top_level_imports(tree)}
        for block in ast.walk(tree):  # imports for annotations only never run
            if isinstance(block, ast.If) and _is_type_checking(block):
                top.update(id(node) for node in ast.walk(block))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                if (
                    isinstance(node, ast.ImportFrom)
                    and node.level == 0
                    and (node.module or "").split(".")[0] != "hftl"
                ):
                    continue  # a third-party import deferred for start-up time or an optional extra
                if isinstance(node, ast.Import) or _targets(module, path, node, modules):
                    if isinstance(node, ast.Import) and not any(
                        a.name.startswith("hftl") for a in node.names
                    ):
                        continue
                    found.append(f"{module}:{node.lineno}")
    return found


def test_no_hftl_module_is_imported_inside_a_function():
    """A function-level import of hftl's own code is how an import cycle hides; there are none."""
    assert _function_level_hftl_imports() == []


def test_method_names_are_written_only_in_their_own_modules():
    """``--method`` names appear as string literals only under hftl/methods/ (their classes and
    registrations): everything else asks the method object (the seam a new method plugs into)."""
    names = method_names()
    assert {"full", "linear-probe", "lora", "distill"} <= set(names)
    alternatives = "|".join(map(re.escape, names))
    pattern = re.compile(rf"""["']({alternatives})["']""")
    offenders = []
    for module, path in _modules().items():
        if module.startswith("hftl.methods"):
            continue
        source = path.read_text()
        exported = {  # __all__ lists public names: the function hftl.distill is no method name
            number
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            and "__all__" in ast.unparse(node.targets[0] if isinstance(node, ast.Assign) else node.target)
            for number in range(node.lineno, node.end_lineno + 1)
        }
        for number, line in enumerate(source.splitlines(), 1):
            if number not in exported and pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_modules_and_recipes_stay_short():
    """About 400 lines is the sign a module holds more than one concern; a recipe is a short script."""
    long = [
        f"{path.relative_to(ROOT)}: {lines}"
        for path, limit in [
            *((p, MAX_MODULE_LINES) for p in sorted(PACKAGE.rglob("*.py"))),
            *((p, MAX_RECIPE_LINES) for p in sorted((ROOT / "recipes").glob("*.py"))),
        ]
        if (lines := len(path.read_text().splitlines())) > limit
    ]
    assert long == []
