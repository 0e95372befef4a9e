"""The package's architecture, checked: no import cycles, subpackages that import only the
layers below them, and run folders and models made before the move that still load."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import facekeypoints

PACKAGE = Path(facekeypoints.__file__).parent
LEGACY = Path(__file__).parent / "fixtures" / "legacy-26ed521"

# Each part of the package, bottom to top: a module may import its own layer and those below.
# `mesh/` keeps everything of the mesh in one place, each module in the layer of its job.
LAYERS = [
    {"errors", "extras", "files", "keypoints", "progress", "geometry", "quiet_import", "schemes",
     "onnx_runtime"},
    {"data"},
    {"mesh"},
    {"stored"},
    {"training", "mesh.fit", "mesh.tune"},
    {"inference", "plots", "mesh.predictor"},
    {"photos"},
    {"serve", "batch"},
    {"api", "demo", "cli", "__init__"},
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()


def _import_graph() -> dict[str, set[str]]:
    """Every module of the package -> the package modules it imports, anywhere in its body
    (imports inside functions count: they form cycles too, only later)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            # a module's own packages are imported before it: importing them adds nothing
            ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
            for target in targets:
                if target in modules and target != name and target not in ancestors:
                    graph[name].add(target)
                    # importing a.b.c runs the __init__ of a.b first
                    parent = target.rpartition(".")[0]
                    while parent not in ancestors and parent != name and _is_package(parent):
                        graph[name].add(parent)
                        parent = parent.rpartition(".")[0]
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the chain of modules, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_and_passes_a_chain():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_cycle():
    graph = _import_graph()
    assert len(graph) > 40 and graph["facekeypoints.training.loop"], "the graph was not read"
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _layer(module: str) -> int:
    parts = module.split(".")[1:] or ["__init__"]
    for part in (".".join(parts[:2]), parts[0]):  # a module named in LAYERS, else its package
        for i, layer in enumerate(LAYERS):
            if part in layer:
                return i
    raise AssertionError(f"{module}: in no layer of the architecture; add it to LAYERS")


def test_a_module_named_in_the_layers_sits_in_its_own_layer_not_its_packages():
    assert _layer("facekeypoints.mesh.heads") < _layer("facekeypoints.stored.runs")
    assert _layer("facekeypoints.mesh.fit") == _layer("facekeypoints.training.loop")
    assert _layer("facekeypoints.mesh.predictor") == _layer("facekeypoints.inference.loading")


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_what_predicts_never_imports_what_trains():
    """Inference, photos, the server and batch jobs run without the training code (and so
    without TensorFlow for ONNX and mesh models): not even through another module."""
    graph = _import_graph()
    training = {m for m in graph if _layer(m) == _layer("facekeypoints.training")}
    users = [m for m in graph if m == "facekeypoints.mesh.predictor"
             or m.split(".")[1:2] in (["inference"], ["photos"], ["serve"], ["batch"])]
    assert len(users) > 20 and len(training) > 10
    found = [f"{m} reaches {sorted(_reaches(graph, m) & training)}" for m in users
             if _reaches(graph, m) & training]
    assert not found, "\n".join(found)


def test_each_part_imports_only_the_layers_below_it():
    upward = [f"{a} imports {b}" for a, targets in _import_graph().items() for b in targets
              if _layer(b) > _layer(a)]
    assert not upward, "\n".join(upward)


def test_models_and_run_folders_made_before_the_move_load_and_predict_the_same():
    """Made by commit 26ed521's code (tests/fixtures/legacy-26ed521/make.py): a `fast` net
    with our own layers, a group of specialists and a mesh run."""
    faces = np.load(LEGACY / "faces.npy").astype(np.float32) / 255
    for name in ["fast", "group", "mesh"]:
        model = facekeypoints.load_model(LEGACY / name)
        expected = np.load(LEGACY / f"{name}_keypoints.npy")
        np.testing.assert_allclose(model.predict(faces), expected, atol=1e-4, err_msg=name)
        assert facekeypoints.Run(LEGACY / name).status == "finished", name
    photos = facekeypoints.load_model(LEGACY / "mesh").for_photos()
    # the photo head frames each face on its mesh points first, which carries ONNX Runtime's
    # rounding further: 6e-4 px between the release these were made with and 1.32, none between
    # runs of one release
    np.testing.assert_allclose(photos.predict(faces), np.load(LEGACY / "mesh_photo_keypoints.npy"),
                               atol=2e-3)
    keras_file = facekeypoints.load_model(LEGACY / "fast" / "model.keras")
    np.testing.assert_allclose(keras_file.predict(faces), np.load(LEGACY / "fast_keypoints.npy"),
                               atol=1e-4)


def test_a_run_from_before_statuses_is_interrupted_when_short_of_its_epochs(tmp_path):
    """Old summary.json files have no status: a run that stopped short of its planned epochs
    (and not by early stopping or a time limit) was interrupted."""
    run = tmp_path / "fast"
    shutil.copytree(LEGACY / "fast", run)
    summary = json.loads((run / "summary.json").read_text())
    assert "status" not in summary and summary["epoch"] == 2
    assert facekeypoints.Run(run).status == "finished"
    recipe = (run / "recipe.toml").read_text().replace("epochs = 2\n", "epochs = 5\n")
    (run / "recipe.toml").write_text(recipe)
    assert facekeypoints.Run(run).status == "interrupted"


@pytest.mark.parametrize("module", ["facekeypoints.photos", "facekeypoints.data"])
def test_subpackages_name_their_public_parts(module):
    import importlib

    package = importlib.import_module(module)
    assert package.__all__ and all(hasattr(package, name) for name in package.__all__)
