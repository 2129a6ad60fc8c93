"""Imports point one way: cli -> services -> experiments (the record) -> backends -> facets/clients
-> domain.

The module list comes from walking src/facetopt with `ast`: every import counts, including the
ones inside functions and `if TYPE_CHECKING:` blocks. Each module belongs to a layer by its package
(the longest matching prefix in LAYERS); a module in no layer fails the test, so a new package has
to be placed deliberately. The "nevers" of the architecture picture (shared/architecture.json)
are rules here: backends never import the other services, the CLI never imports clients or
backends. docs/development.md states the same rules in prose.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.heavy_libraries import HEAVY as HEAVY_LIBRARIES

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "facetopt"

# Longest matching prefix wins.
LAYERS: dict[str, str] = {
    "facetopt": "package",  # the package's own __init__ (version)
    "facetopt.cli": "cli",
    "facetopt.eval_facet": "runner",  # the file bt runs: an entry point beside the CLI
    "facetopt.services": "services",
    "facetopt.services.backends": "backends",  # the adapters under the workflows that use them
    "facetopt.services.experiments": "record",  # the experiment record, under every workflow that names a run
    "facetopt.clients": "clients",
    "facetopt.sample": "clients",  # package data read from disk: an outside source like the clients'
    "facetopt.simulation": "simulation",
    "facetopt.facets": "facets",
    "facetopt.domain": "domain",
    "facetopt.settings": "settings",
    "facetopt.settings_defaults": "settings",  # defaults, per-model defaults, prices
    "facetopt.settings_names": "settings",  # the original scripts' names, unknown-name warnings
    "facetopt.settings_check": "settings",  # a bad value named by its flag or variable and file
    "facetopt.errors": "errors",
}
_EVERYWHERE = {"settings", "errors", "package"}
MAY_IMPORT: dict[str, set[str]] = {
    # the CLI calls services (every write goes through one) and never picks a backend itself
    "cli": {"cli", "services", "record", "facets", "domain"} | _EVERYWHERE,
    "runner": {"services", "record", "clients", "facets", "domain"} | _EVERYWHERE,
    "services": {"services", "record", "backends", "clients", "facets", "domain"} | _EVERYWHERE,
    "record": {"record", "backends", "clients", "facets", "domain"} | _EVERYWHERE,
    # backends sit under the workflows: what they need from above is passed in
    "backends": {"backends", "clients", "facets", "domain"} | _EVERYWHERE,
    "clients": {"clients", "facets", "domain"} | _EVERYWHERE,
    "simulation": {"simulation", "facets", "domain"} | _EVERYWHERE,
    "facets": {"facets", "domain"} | _EVERYWHERE,
    "domain": {"domain", "errors"},
    "settings": {"settings", "errors", "package"},
    "errors": {"errors"},
    "package": set(),
}
# The simulation is a transport of the LLM client, nothing else reaches it.
SIMULATION_GATE = "facetopt.clients.llm"

HEAVY = set(HEAVY_LIBRARIES)
# The modules bt's runner imports, and the heavy libraries each may use besides the clients'.
RUNNER_EXCEPTIONS: dict[str, set[str]] = {
    "facetopt.eval_facet": {"braintrust"},
    "facetopt.services.eval.task": {"autoevals"},
}
UI = {"typer", "click", "rich"}
# Pure layers: the standard library and pydantic only (pydantic_core is part of pydantic: its JSON parser).
PURE_THIRD_PARTY: dict[str, set[str]] = {
    "domain": {"pydantic"},
    "facets": {"pydantic", "pydantic_core"},
    "simulation": set(),
    "errors": set(),
}
HELP_ENTRY_POINTS = ("facetopt.cli.main", "facetopt.cli.__main__")


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a dotted module name, facetopt's or a library's
    line: int
    at_import_time: bool  # runs when the importer is imported (not in a function, not TYPE_CHECKING)
    type_checking: bool = False  # only for the type checker: never runs


Graph = Mapping[str, list[Import]]


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str]):
        self.module, self.is_package, self.known = module, is_package, known
        self.imports: list[Import] = []
        self.deferred = 0  # > 0 inside a function body or a TYPE_CHECKING block
        self.type_checking = 0  # > 0 inside a TYPE_CHECKING block
        self.called_at_import: set[str] = set()  # module functions the module body calls

    def visit_Module(self, node: ast.Module) -> None:
        self.called_at_import = {
            statement.value.func.id
            for statement in node.body
            if isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Call)
            and isinstance(statement.value.func, ast.Name)
        }
        self.generic_visit(node)

    def _add(self, target: str, node: ast.stmt) -> None:
        found = Import(self.module, target, node.lineno, self.deferred == 0, self.type_checking > 0)
        if found not in self.imports:  # `from x import a, b` is one import of x
            self.imports.append(found)

    def _deferred(self, nodes: Iterable[ast.AST]) -> None:
        self.deferred += 1
        for node in nodes:
            self.visit(node)
        self.deferred -= 1

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            if self.deferred == 0 and getattr(node, "name", None) in self.called_at_import:
                self.generic_visit(node)  # `_register()` at module level runs its imports at import time
            else:
                self._deferred(ast.iter_child_nodes(node))
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            self.type_checking += 1
            self._deferred(node.body)
            self.type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            super().visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.split(".") if self.is_package else self.module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            self._add(submodule if submodule in self.known else source, node)


def collect_imports(src: Path, package: str = PACKAGE) -> dict[str, list[Import]]:
    """Every module of the package under `src`, with every import it makes."""
    files = {module_name(path, src): path for path in sorted((src / package).rglob("*.py"))}
    graph: dict[str, list[Import]] = {}
    for module, path in files.items():
        collector = _Collector(module, path.name == "__init__.py", set(files))
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        graph[module] = collector.imports
    return graph


def layer_of(module: str) -> str | None:
    if module == PACKAGE:
        return LAYERS[PACKAGE]
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
        layer = LAYERS.get(".".join(parts[:end]))
        if layer:
            return layer
    return None


def _is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _third_party(name: str) -> str | None:
    top = name.split(".")[0]
    if top == PACKAGE or top == "__future__" or top in sys.stdlib_module_names:
        return None
    return top


def _own_module(target: str, graph: Graph) -> str | None:
    """The facetopt module an import names (the package, when it names an attribute of one)."""
    if not _is_within(target, PACKAGE):
        return None
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in graph:
            return ".".join(parts[:end])
    return target


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


def help_closure(graph: Graph, entry_points: Iterable[str] = HELP_ENTRY_POINTS) -> set[str]:
    """Modules that `facetopt --help` imports: import-time imports from the CLI's entry points,
    each with its parent packages (importing a.b.c runs a/__init__ and a/b/__init__)."""
    seen: set[str] = set()
    todo = [m for entry in entry_points if entry in graph for m in _with_parents(entry)]
    while todo:
        module = todo.pop()
        if module in seen or module not in graph:
            continue
        seen.add(module)
        for imp in graph[module]:
            own = _own_module(imp.target, graph)
            if imp.at_import_time and own:
                todo.extend(_with_parents(own))
    return seen


def _layer_violation(imp: Import, importer_layer: str, target: str, target_layer: str) -> str | None:
    if target_layer == "simulation" and importer_layer != "simulation":
        if _is_within(imp.importer, SIMULATION_GATE):
            return None
        return f"simulation is reached only through the LLM client ({SIMULATION_GATE}), never from {importer_layer}"
    if target_layer not in MAY_IMPORT[importer_layer]:
        allowed = ", ".join(sorted(MAY_IMPORT[importer_layer])) or "nothing of facetopt"
        return (
            f"{importer_layer} may not import {target_layer} "
            f"(cli -> services -> record -> backends -> facets/clients -> domain; "
            f"{importer_layer} may import: {allowed})"
        )
    return None


def _library_violation(imp: Import, importer_layer: str, library: str, in_help: bool) -> str | None:
    if library in UI and importer_layer != "cli":
        return f"{library} is the CLI's: only facetopt.cli imports it (services return data, cli prints)"
    if importer_layer in PURE_THIRD_PARTY and library not in PURE_THIRD_PARTY[importer_layer]:
        allowed = "".join(f" and {name}" for name in sorted(PURE_THIRD_PARTY[importer_layer]))
        return f"{importer_layer} is pure: it imports the standard library{allowed} only"
    if library in HEAVY:
        if importer_layer != "clients" and library not in RUNNER_EXCEPTIONS.get(imp.importer, set()):
            return (
                f"heavy library {library} is imported only inside clients "
                f"(and by the eval runner's modules: {', '.join(sorted(RUNNER_EXCEPTIONS))})"
            )
        if imp.at_import_time and in_help:
            return (
                f"heavy library {library} at module top level of a module `facetopt --help` imports; "
                "import it inside the function that needs it"
            )
    return None


def _cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one facetopt module. Every import counts: in a
    function, under TYPE_CHECKING (a type named from a module above is a dependency all the same)
    and a package's __init__ importing its own submodules (they import a sibling, not the
    package face)."""
    edges = {
        m: sorted({t for imp in imps if (t := _own_module(imp.target, graph)) and t in graph and t != m})
        for m, imps in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def violations(graph: Graph) -> list[str]:
    """One line per import that crosses the layering: importer, line, imported module, rule."""
    found: list[str] = []
    in_help = help_closure(graph)
    for module in sorted(graph):
        importer_layer = layer_of(module)
        if importer_layer is None:
            found.append(
                f"{module} belongs to no layer: place its package in LAYERS (tests/test_layering.py)"
            )
            continue
        for imp in graph[module]:
            where = f"{module} (line {imp.line}) imports {imp.target}"
            own = _own_module(imp.target, graph)
            if own is not None:
                target_layer = layer_of(own)
                if target_layer is None:
                    continue  # reported once as the module in no layer
                rule = _layer_violation(imp, importer_layer, own, target_layer)
            else:
                library = _third_party(imp.target)
                rule = library and _library_violation(imp, importer_layer, library, module in in_help)
            if rule:
                found.append(f"{where}: {rule}")
    for component in _cycles(graph):
        found.append(
            f"import cycle between {', '.join(component)}: move what they share down a layer (to domain)"
        )
    return found


# ---- the project itself ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def project_graph() -> dict[str, list[Import]]:
    return collect_imports(SRC)


def test_imports_respect_the_layering(project_graph: dict[str, list[Import]]):
    found = violations(project_graph)
    assert not found, "imports that cross the layering:\n" + "\n".join(found)


def test_the_module_list_is_the_package_itself(project_graph: dict[str, list[Import]]):
    """The walk sees every layer, so the rules above are checked against real modules."""
    layers = {layer_of(m) for m in project_graph}
    assert set(MAY_IMPORT) <= layers
    assert "facetopt.cli.main" in project_graph
    assert "facetopt.cli.main" in help_closure(project_graph)


@pytest.mark.slow
def test_the_help_closure_is_what_python_imports(project_graph: dict[str, list[Import]]):
    """The static walk agrees with a fresh interpreter on which modules loading the CLI imports."""
    shown = subprocess.run(
        [sys.executable, "-c", "import sys, facetopt.cli.main; print(*sorted(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = {name for name in shown.stdout.split() if _is_within(name, PACKAGE)}
    assert help_closure(project_graph, ["facetopt.cli.main"]) == loaded


def test_runner_exceptions_name_modules_that_exist(project_graph: dict[str, list[Import]]):
    """An exception for a module that is gone, or that no longer needs it, is removed, not kept."""
    for module, libraries in RUNNER_EXCEPTIONS.items():
        assert module in project_graph, f"{module} no longer exists"
        used = {_third_party(imp.target) for imp in project_graph[module]}
        assert libraries <= used, f"{module} no longer imports {libraries - used}"


# ---- the checker catches what it should (synthetic module graphs) ----------------------------


def _graph(edges: dict[str, list[tuple[str, bool]]]) -> dict[str, list[Import]]:
    """A module graph from {importer: [(target, at_import_time), ...]}; every importer is a module."""
    graph = {
        m: [Import(m, target, n + 1, top) for n, (target, top) in enumerate(imps)]
        for m, imps in edges.items()
    }
    for parent in {p for m in edges for p in _with_parents(m)[:-1]}:
        graph.setdefault(parent, [])
    return graph


_CLEAN = {
    "facetopt.cli.main": [("typer", True), ("facetopt.services.run", True)],
    "facetopt.services.run": [("facetopt.clients.db", True), ("facetopt.facets.rule", True)],
    "facetopt.services.backends.local": [("facetopt.clients.db", False), ("facetopt.domain.model", True)],
    "facetopt.clients.db": [("duckdb", False), ("facetopt.domain.model", True), ("facetopt.settings", True)],
    "facetopt.clients.llm.client": [("facetopt.simulation.transport", False), ("openai", False)],
    "facetopt.simulation.transport": [("facetopt.facets.rule", True)],
    "facetopt.facets.rule": [("facetopt.domain.model", True), ("pydantic", True)],
    "facetopt.domain.model": [("pydantic", True), ("facetopt.errors", True)],
    "facetopt.settings": [("facetopt.errors", True)],
    "facetopt.errors": [],
}


def _planted(importer: str, target: str, at_import_time: bool = True) -> list[str]:
    edges = {m: list(imps) for m, imps in _CLEAN.items()}
    edges.setdefault(importer, []).append((target, at_import_time))
    return violations(_graph(edges))


MAX_MODULE_LINES = 400  # DESIGN.md: small modules; a longer one is split along a seam that explains itself


def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(SRC)): n
        for path in (SRC / PACKAGE).rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules (DESIGN.md): {long}"


def test_a_clean_synthetic_graph_passes():
    assert violations(_graph(_CLEAN)) == []


@pytest.mark.parametrize(
    ("importer", "target", "at_import_time", "rule"),
    [
        ("facetopt.services.run", "facetopt.cli.shared.output", False, "services may not import cli"),
        (
            "facetopt.services.backends.local",
            "facetopt.services.run",
            False,
            "backends may not import services",
        ),
        (
            "facetopt.services.experiments.registry",
            "facetopt.services.run",
            False,
            "record may not import services",
        ),
        ("facetopt.cli.main", "facetopt.clients.db", False, "cli may not import clients"),
        ("facetopt.cli.main", "facetopt.services.backends.local", False, "cli may not import backends"),
        ("facetopt.clients.db", "facetopt.services.other", False, "clients may not import services"),
        ("facetopt.facets.rule", "facetopt.clients.db", True, "facets may not import clients"),
        ("facetopt.facets.rule", "facetopt.cli.shared.output", False, "facets may not import cli"),
        ("facetopt.domain.model", "facetopt.settings", True, "domain may not import settings"),
        ("facetopt.domain.model", "facetopt.facets.other", True, "domain may not import facets"),
        ("facetopt.services.run", "facetopt.simulation.transport", False, "only through the LLM client"),
        ("facetopt.clients.db", "facetopt.simulation.transport", False, "only through the LLM client"),
        (
            "facetopt.services.run",
            "sqlglot.tokens",
            False,
            "heavy library sqlglot is imported only inside clients",
        ),
        ("facetopt.clients.db", "duckdb", True, "at module top level of a module `facetopt --help` imports"),
        ("facetopt.services.run", "rich.table", False, "rich is the CLI's"),
        ("facetopt.domain.model", "ruamel.yaml", False, "domain is pure"),
        ("facetopt.simulation.transport", "httpx", True, "simulation is pure"),
        ("facetopt.brand_new", "facetopt.errors", True, "belongs to no layer"),
    ],
)
def test_a_planted_violation_is_named_with_importer_target_and_rule(importer, target, at_import_time, rule):
    found = _planted(importer, target, at_import_time)
    assert len(found) == 1, found
    assert found[0].startswith(importer)
    assert target in found[0] or "belongs to no layer" in found[0]
    assert rule in found[0]


def test_a_heavy_import_deferred_to_a_function_is_fine_but_not_at_top_level_outside_help():
    # a client nobody imports at --help time may import duckdb at top level
    edges = {**_CLEAN, "facetopt.clients.other": [("duckdb", True)]}
    assert violations(_graph(edges)) == []
    # ... until a service the CLI imports at top level imports it at top level
    edges["facetopt.services.run"] = [*_CLEAN["facetopt.services.run"], ("facetopt.clients.other", True)]
    found = violations(_graph(edges))
    assert found == [
        "facetopt.clients.other (line 1) imports duckdb: heavy library duckdb at module top level of a "
        "module `facetopt --help` imports; import it inside the function that needs it"
    ]


def test_a_cycle_between_modules_is_reported():
    found = _planted("facetopt.services.other", "facetopt.services.run", False)
    assert found == []
    edges = {**_CLEAN, "facetopt.services.other": [("facetopt.services.run", False)]}
    edges["facetopt.services.run"] = [*_CLEAN["facetopt.services.run"], ("facetopt.services.other", False)]
    found = violations(_graph(edges))
    assert len(found) == 1 and found[0].startswith(
        "import cycle between facetopt.services.other, facetopt.services.run"
    )
    # an import for annotations only (TYPE_CHECKING) closes a cycle too
    graph = _graph(edges)
    graph["facetopt.services.run"][-1] = Import(
        "facetopt.services.run", "facetopt.services.other", 3, False, True
    )
    assert [line.split(":")[0] for line in violations(graph)] == [
        "import cycle between facetopt.services.other, facetopt.services.run"
    ]
    # and so does a package's __init__ importing its own submodule, which imports the package
    edges = {**_CLEAN, "facetopt.services.pkg": [("facetopt.services.pkg.impl", False)]}
    edges["facetopt.services.pkg.impl"] = [("facetopt.services.pkg", True)]
    assert [line.split(":")[0] for line in violations(_graph(edges))] == [
        "import cycle between facetopt.services.pkg, facetopt.services.pkg.impl"
    ]
    # an __init__ naming its submodules' entry points, with the submodules importing a sibling: none
    edges = {**_CLEAN, "facetopt.services.pkg": [("facetopt.services.pkg.impl", False)]}
    edges["facetopt.services.pkg.impl"] = [("facetopt.services.pkg.base", True)]
    edges["facetopt.services.pkg.base"] = []
    assert violations(_graph(edges)) == []


def test_the_collector_sees_imports_in_functions_and_type_checking_blocks(tmp_path: Path):
    package = tmp_path / "facetopt"
    (package / "services").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "services" / "__init__.py").write_text("from . import run\n")
    (package / "services" / "run.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from facetopt.cli.main import app\n"
        "else:\n"
        "    import json\n"
        "def go():\n"
        "    import duckdb\n"
        "    from ..services import run\n"
        "class Holder:\n"
        "    import sqlglot\n"
        "def _register():\n"
        "    import ruamel.yaml\n"
        "_register()\n"
    )
    graph = collect_imports(tmp_path)
    assert set(graph) == {"facetopt", "facetopt.services", "facetopt.services.run"}
    assert graph["facetopt.services"] == [Import("facetopt.services", "facetopt.services.run", 1, True)]
    seen = {
        (imp.target, imp.line, imp.at_import_time, imp.type_checking)
        for imp in graph["facetopt.services.run"]
    }
    assert seen == {
        ("typing", 1, True, False),
        ("facetopt.cli.main", 3, False, True),
        ("json", 5, True, False),
        ("duckdb", 7, False, False),
        ("facetopt.services.run", 8, False, False),
        ("sqlglot", 10, True, False),
        ("ruamel.yaml", 12, True, False),
    }
