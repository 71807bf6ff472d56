"""The house's rules, read from the source: no import circles, calls one way, the layer without the CLI.

Every ``import`` counts, including the ones inside functions (a lazy import still ties two modules
together), except those under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "moodtune": ROOT / "layers/shared/moodtune",
    "moodtune_cli": ROOT / "cli/moodtune_cli",
    "model_export": ROOT / "model_export",
    "infra": ROOT / "infra",
}
# Floors of the moodtune package, lowest first: a module may import its own floor and lower ones.
FLOORS = [
    {"moodtune", "moodtune._exports", "moodtune.labels", "moodtune.similarity", "moodtune.errors"},
    {"moodtune.settings"},
    {"moodtune.emotion"},
    {"moodtune.catalog"},
    {"moodtune.recommend", "moodtune.feedback"},
    {"moodtune.http"},
    {"moodtune.service"},
]


def module_name(path: Path) -> str:
    root = next(name for name, base in PACKAGES.items() if path.is_relative_to(base))
    parts = path.relative_to(PACKAGES[root]).with_suffix("").parts
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((root, *parts))


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(path: Path) -> set[str]:
    """First-party modules ``path`` imports (a ``from pkg import name`` counts as ``pkg.name`` when that is
    a module, else as ``pkg``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for base in PACKAGES.values() for p in base.rglob("*.py")}
    # Importing a submodule always runs its parent packages first: that is no dependency of its own.
    return {
        name: {m for m in imports_of(path) if m in modules and m != name and not name.startswith(m + ".")}
        for name, path in modules.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
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

    # The graph is a few hundred modules deep at most; the default recursion limit (1,000) holds it,
    # and the limit is left alone: other tests depend on it (deeply nested JSON is refused by it).
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def floor_of(module: str) -> int:
    for i, floor in enumerate(FLOORS):
        if any(module == room or module.startswith(room + ".") for room in floor if room != "moodtune"):
            return i
    if module in FLOORS[0]:
        return 0
    raise AssertionError(f"{module} is in no floor of the moodtune house: add it to FLOORS")


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    assert cycles(graph()) == []


def test_a_package_import_is_a_dependency_on_it() -> None:
    """``from moodtune.catalog import Catalog`` depends on moodtune.catalog (the room's ``__init__``)."""
    edges = graph()
    assert (
        "moodtune.catalog" in edges["moodtune.service"]
        or "moodtune.catalog.cache" in edges["moodtune.service"]
    )


def test_calls_run_one_way_through_the_rooms() -> None:
    """A room imports its own floor or lower ones: emotion never imports catalog, nothing imports service
    but the handlers, http never reaches up to service."""
    edges = graph()
    upward = [
        f"{a} -> {b}"
        for a, targets in edges.items()
        if a.startswith("moodtune.") or a == "moodtune"
        for b in targets
        if b.startswith("moodtune.") and floor_of(b) > floor_of(a)
    ]
    assert upward == []


def room(module: str) -> str:
    """``moodtune.catalog.ingest`` -> ``catalog``; a ground-floor module is its own room."""
    return module.split(".")[1] if module.count(".") else module


def test_recommend_and_feedback_do_not_know_each_other() -> None:
    edges = graph()
    crossing = [
        f"{a} -> {b}"
        for a, targets in edges.items()
        for b in targets
        if {room(a), room(b)} == {"recommend", "feedback"}
    ]
    assert crossing == []


def test_the_library_never_imports_the_cli_model_export_or_infra() -> None:
    edges = graph()
    wrong = [
        f"{a} -> {b}"
        for a, targets in edges.items()
        if a.split(".")[0] == "moodtune"
        for b in targets
        if b.split(".")[0] != "moodtune"
    ]
    assert wrong == []


def _third_party(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - set(PACKAGES)


# Distribution name -> the import names it provides.
PROVIDES = {
    "aws-lambda-powertools": {"aws_lambda_powertools"},
    "pydantic": {"pydantic", "pydantic_core"},
    "pydantic-settings": {"pydantic_settings"},
    "boto3": {"boto3", "botocore"},
    "numpy": {"numpy"},
    "onnxruntime": {"onnxruntime"},
    "tokenizers": {"tokenizers"},
}


def _shipped(requirements: Path) -> set[str]:
    names: set[str] = set()
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            dist = line.split("==")[0].split("[")[0].strip().lower()
            names |= PROVIDES.get(dist, {dist.replace("-", "_")})
    return names


@pytest.mark.parametrize(
    ("requirements", "extra"),
    [
        ("functions/recommend/requirements.txt", set()),
        # The zip functions' layer has no model runtime: only the image imports emotion.classifier.
        ("layers/shared/requirements.txt", {"onnxruntime", "tokenizers"}),
    ],
)
def test_every_library_import_is_shipped(requirements: str, extra: set[str]) -> None:
    """What the library imports comes with the function: the stdlib, the requirements, or (for the layer's
    zip functions, which never load the classifier) the image's model runtime. matplotlib, rich and
    requests belong to the CLI and export tools, which live outside the layer."""
    shipped = _shipped(ROOT / requirements) | extra
    missing = {
        str(path.relative_to(ROOT)): sorted(_third_party(path) - shipped)
        for path in PACKAGES["moodtune"].rglob("*.py")
        if _third_party(path) - shipped
    }
    assert missing == {}


def test_the_cli_is_not_in_the_layer() -> None:
    layer = ROOT / "layers/shared"
    assert not list(layer.rglob("*cli*.py"))
    assert not (layer / "moodtune_cli").exists()


def test_each_room_names_its_public_api() -> None:
    """Every room's ``__init__`` has a one-line docstring and an ``__all__`` whose names resolve."""
    import importlib

    for room in ("emotion", "catalog", "recommend", "feedback", "http"):
        module = importlib.import_module(f"moodtune.{room}")
        assert module.__doc__ and module.__doc__.startswith(f"{room}: ")
        assert module.__all__, room
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_a_room_loads_its_modules_only_when_a_name_is_used() -> None:
    """``import moodtune.feedback`` must not load numpy through a neighbour module (the feedback function)."""
    import subprocess

    script = (
        "import sys, moodtune.feedback, moodtune.emotion, moodtune.catalog\n"
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'boto3') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(ROOT / "layers/shared")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"
