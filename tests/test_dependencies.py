"""pyproject.toml declares what the code imports, and the extras stay optional.

Every third-party module hftl imports (a statement anywhere, or ``importlib.import_module``/``find_spec`` of a
literal name) maps, through ``importlib.metadata.packages_distributions()``, to a distribution that
pyproject declares: in ``dependencies``, or in an extra. A distribution that only an extra declares must
not be needed to import the rest of hftl: with its modules made unimportable, every hftl module imports
except those that themselves import an extra at module level. ``.ci/lowest.txt`` pins each core
dependency at its lower bound (``.ci/run`` installs those and runs a smoke subset), and no bound shuts
out a patch release."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from .conftest import REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

CORE = "core"
# Extras that only gather other extras or development tools: they never justify an import in hftl/.
NOT_FOR_IMPORTS = {"dev", "bench"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(pyproject: Path) -> dict[str, set[str]]:
    """Each declared distribution (normalised name) -> the groups declaring it: ``"core"`` or extra names.

    Self-references such as ``hftl[demo]`` are expanded; dev-only extras are left out."""
    project = tomllib.loads(pyproject.read_text())["project"]
    groups: dict[str, set[str]] = {}
    for line in project["dependencies"]:
        groups.setdefault(_normalise(Requirement(line).name), set()).add(CORE)
    for extra, lines in project.get("optional-dependencies", {}).items():
        if extra in NOT_FOR_IMPORTS:
            continue
        for line in lines:
            requirement = Requirement(line)
            if _normalise(requirement.name) != _normalise(project["name"]):
                groups.setdefault(_normalise(requirement.name), set()).add(extra)
    return groups


def _literal_module(node: ast.Call) -> str | None:
    """``x`` from ``importlib.import_module("x")`` or ``importlib.util.find_spec("x")``."""
    name = ast.unparse(node.func)
    if name.split(".")[-1] in {"import_module", "find_spec"} and node.args:
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def _at_import_time(tree: ast.Module):
    """The nodes that run when the module is imported: not function bodies."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _imported_names(nodes) -> set[str]:
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and (literal := _literal_module(node)):
            names.add(literal)
    return {name.split(".")[0] for name in names}


def third_party_imports(package_dir: Path) -> dict[Path, tuple[set[str], set[str]]]:
    """Each module file -> (top-level third-party modules it imports anywhere, those it imports at import time)."""
    local = {package_dir.name}
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        anywhere = _imported_names(ast.walk(tree)) - local - set(sys.stdlib_module_names)
        at_import = _imported_names(_at_import_time(tree)) - local - set(sys.stdlib_module_names)
        found[path] = (anywhere, at_import)
    return found


def undeclared_imports(package_dir: Path, pyproject: Path) -> list[str]:
    """One line per import of a module whose distribution pyproject does not declare."""
    groups = declared(pyproject)
    distributions = importlib.metadata.packages_distributions()
    problems = []
    for path, (anywhere, _) in third_party_imports(package_dir).items():
        for module in sorted(anywhere):
            names = {_normalise(name) for name in distributions.get(module, [])}
            if not names and _normalise(module) in groups:  # an extra not installed here (CI's dev
                names = {_normalise(module)}  # lacks teacher): its module is named after its distribution
            where = path.relative_to(package_dir.parent)
            if not names:
                problems.append(f"{where} imports {module}, which no installed distribution provides")
            elif not names & groups.keys():
                problems.append(
                    f"{where} imports {module} (distribution {', '.join(sorted(names))}): not declared"
                )
    return problems


def extra_only_modules(pyproject: Path) -> set[str]:
    """The top-level modules of installed distributions that only extras declare."""
    extra_only = {name for name, where in declared(pyproject).items() if CORE not in where}
    return {
        module
        for module, names in importlib.metadata.packages_distributions().items()
        if {_normalise(name) for name in names} & extra_only and not module.startswith("_")
    }


_IMPORT_EVERY_MODULE = """
import importlib, json, sys
for name in {blocked!r}:
    sys.modules[name] = None  # as if not installed: import fails, importlib.util.find_spec answers None
failed = {{}}
for module in {modules!r}:
    try:
        importlib.import_module(module)
    except Exception as exc:
        failed[module] = f"{{type(exc).__name__}}: {{exc}}"
print(json.dumps(failed))
"""


def imports_without_extras(package_dir: Path, pyproject: Path) -> list[str]:
    """One line per module that fails to import once the extras' modules are unimportable, apart from the
    modules that import an extra themselves at import time (an extra's own entry modules)."""
    blocked = extra_only_modules(pyproject)
    modules, allowed = [], set()
    for path, (_, at_import) in third_party_imports(package_dir).items():
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if module.endswith("__main__"):
            continue  # runs the CLI when imported
        modules.append(module)
        if at_import & blocked:
            allowed.add(module)
    script = _IMPORT_EVERY_MODULE.format(blocked=sorted(blocked), modules=modules)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=package_dir.parent, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    failed = json.loads(result.stdout.strip().splitlines()[-1])
    return [f"{module}: {error}" for module, error in sorted(failed.items()) if module not in allowed]


def test_every_third_party_import_is_declared_in_pyproject():
    problems = undeclared_imports(REPO / "hftl", REPO / "pyproject.toml")
    assert not problems, "add to pyproject.toml (dependencies, or the extra it belongs to):\n" + "\n".join(
        problems
    )


def test_hftl_imports_without_any_extra_installed():
    """An extra's package is imported inside the function that needs it (or by a module only an extra's
    command reaches), so `import hftl`, `hftl --help` and every core path work without it."""
    problems = imports_without_extras(REPO / "hftl", REPO / "pyproject.toml")
    assert not problems, "these need an extra at import time; import it lazily:\n" + "\n".join(problems)


def test_the_checks_catch_an_undeclared_import_and_an_eager_extra(tmp_path):
    """The two checks above, on a made-up package: they go red on each kind of mistake."""
    package = tmp_path / "fakepkg"
    package.mkdir()
    (package / "__init__.py").write_text("import yaml\nfrom . import uses_extra\n")
    (package / "uses_extra.py").write_text("import packaging\n\ndef later():\n    import pytest\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "fakepkg"\ndependencies = ["pyyaml>=6"]\n'
        '[project.optional-dependencies]\nsome = ["packaging>=20"]\n'
    )
    assert undeclared_imports(package, tmp_path / "pyproject.toml") == [
        "fakepkg/uses_extra.py imports pytest (distribution pytest): not declared"
    ]
    problems = imports_without_extras(package, tmp_path / "pyproject.toml")
    assert [line.split(":")[0] for line in problems] == ["fakepkg"]  # the core module that needs the extra


def test_packages_that_carry_data_or_weights_are_in_an_extra():
    from hftl.data import builtin_datasets
    from hftl.resolve import offline_copies

    groups = declared(REPO / "pyproject.toml")
    packages = {spec.package for spec in builtin_datasets().values() if not spec.install}  # pip, not apt
    packages |= {copy.package for copy in offline_copies().values()}
    missing = sorted(package for package in packages if _normalise(package) not in groups)
    assert not missing, f"declare these in an extra (demo or teacher): {missing}"


def lowest_pins() -> dict[str, Version]:
    pins = {}
    for line in (REPO / ".ci" / "lowest.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_normalise(name)] = Version(version)
    return pins


def test_ci_pins_every_core_dependency_at_its_lower_bound():
    """.ci/run installs .ci/lowest.txt and runs a smoke subset: the bounds in pyproject are the tested ones."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = lowest_pins()
    wrong = []
    for line in project["dependencies"]:
        requirement = Requirement(line)
        lower = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
        pinned = pins.get(_normalise(requirement.name))
        if not lower or pinned != lower[0]:
            wrong.append(f"{line}: .ci/lowest.txt pins {pinned}")
    assert not wrong, "\n".join(wrong)
    assert "lowest.txt" in (REPO / ".ci" / "run").read_text()


def test_no_bound_shuts_out_a_patch_release():
    """An upper bound may exclude a major series (``<6``), never the next patch (``<=2.14.1``, ``==2.4``)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [
        line for lines in project["optional-dependencies"].values() for line in lines
    ]
    pinned = [
        line for line in lines for spec in Requirement(line).specifier if spec.operator in {"<=", "==", "==="}
    ]
    assert not pinned, pinned
