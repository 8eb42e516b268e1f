"""radtl's modules import one another without a cycle (issue 23: one home per idea).

The graph counts every ``import`` statement in ``radtl/``, including the ones inside functions: an import
moved into a function hides a cycle from Python but not from a reader. Importing ``a.b.c`` also imports the
packages ``a`` and ``a.b`` (their ``__init__`` runs first), so those are edges too. Imports under
``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import REPO

PACKAGE = REPO / "radtl"


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module and package of ``package``."""
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported_names(module: str, node: ast.Import | ast.ImportFrom, is_package: bool) -> list[str]:
    """The dotted names an import statement may refer to (``from a import b`` may import module ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, base] if base else parts)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    return skipped


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the radtl modules whose code runs when it (or a function of it) imports them."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_nodes(tree)
        targets: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in skipped:
                continue
            for name in _imported_names(module, node, path.name == "__init__.py"):
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                parts = name.split(".")
                for depth in range(1, len(parts) + 1):  # the parent packages run first
                    target = ".".join(parts[:depth])
                    if target in modules and target != module and not module.startswith(target + "."):
                        targets.add(target)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
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


def test_the_checker_finds_a_cycle_through_a_lazy_import():
    graph = {"radtl.a": {"radtl.b"}, "radtl.b": {"radtl.c"}, "radtl.c": {"radtl.a"}, "radtl.d": {"radtl.a"}}
    assert cycles(graph) == [["radtl.a", "radtl.b", "radtl.c"]]


def test_the_graph_counts_imports_inside_functions_and_parent_packages(tmp_path):
    package = tmp_path / "radtl"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("from radtl.data.pack import Pack\n")
    (package / "data" / "pack.py").write_text("def load():\n    from radtl.io import read\n")
    (package / "io.py").write_text("from radtl.data import helpers\n")
    (package / "data" / "helpers.py").write_text("")
    graph = import_graph(module_files(package))
    assert graph["radtl.data.pack"] == {"radtl.io"}
    assert graph["radtl.io"] == {"radtl.data", "radtl.data.helpers"}
    assert cycles(graph) == [["radtl.data", "radtl.data.pack", "radtl.io"]]


def test_radtl_has_no_import_cycles():
    found = cycles(import_graph(module_files()))
    assert not found, "modules that import one another in radtl:\n" + "\n".join(", ".join(component) for component in found)


#: radtl's packages in layers, lowest first (docs/architecture.md draws the same picture): a package imports only
#: packages of lower layers; the foundation's modules may also import one another.
LAYERS = [
    ("foundation", {"radtl", "radtl.errors", "radtl.atomic", "radtl.lazy", "radtl.logs", "radtl.parallel",
                    "radtl.png", "radtl.commands"}),
    ("DICOM, networks, losses, statistics", {"radtl.dicom", "radtl.networks", "radtl.losses", "radtl.stats"}),
    ("datasets, bundles, interpretation, energy, cohorts", {"radtl.data", "radtl.bundle", "radtl.interpret",
                                                            "radtl.energy", "radtl.cohort"}),
    ("transforms, reports, the sweep", {"radtl.transforms", "radtl.report", "radtl.sweep"}),
    ("engines, radtl segment", {"radtl.engines", "radtl.segment"}),
    ("evaluation, pseudo-labels, the label app", {"radtl.evaluation", "radtl.pseudolabel", "radtl.label"}),
    ("the command line, deprecated paths", {"radtl.cli", "radtl.seg"}),
]


def _package(module: str) -> str:
    """``radtl.dicom.index.build`` -> ``radtl.dicom``; top-level modules are packages of their own."""
    return ".".join(module.split(".")[:2])


def test_every_package_of_radtl_has_a_layer():
    layered = set().union(*(packages for _, packages in LAYERS))
    assert {_package(module) for module in module_files()} == layered


def test_each_package_imports_only_from_the_layers_below_it():
    rank = {package: index for index, (_, packages) in enumerate(LAYERS) for package in packages}
    upward = sorted(
        f"{module} imports {target} ({LAYERS[rank[_package(target)]][0]})"
        for module, targets in import_graph(module_files()).items()
        for target in targets
        if _package(target) != _package(module)
        and rank[_package(target)] >= rank[_package(module)]
        and not rank[_package(module)] == rank[_package(target)] == 0
    )
    assert not upward, "imports that go up or across a layer:\n" + "\n".join(upward)
