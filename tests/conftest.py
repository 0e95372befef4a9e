"""Shared fixtures. Tests marked by their use of SHARED need ../shared/data (CI has it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
# Session fixtures that take half a minute or more, and the test files that use each: those run
# in the same pytest-xdist worker, so it is made once (pytest_xdist_make_scheduler below;
# pytest_collection_modifyitems fails a run where a file uses one and is not listed here)
EXPENSIVE = {"photo_onnx": ("test_detect_job.py", "test_mesh.py", "test_tracking.py")}
SHARED = ROOT.parent / "shared" / "data"
FACES = SHARED / "faces"
KAGGLE = SHARED / "kaggle"


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    """The real face data beside the project; these tests need it and say so."""
    assert (FACES / "training.csv.gz").is_file(), f"these tests need the real data in {FACES}"
    return FACES


@pytest.fixture(scope="session")
def synthetic_files(tmp_path_factory) -> dict[str, Path]:
    from facekeypoints.data import synthetic

    return synthetic.write_kaggle_files(tmp_path_factory.mktemp("synthetic"), n_train=240,
                                        n_test=30, seed=3)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, synthetic_files):
    """A small net trained for one epoch on synthetic faces: real files, seconds to make."""
    from facekeypoints.training import loop, recipe

    settings = {"epochs": 1, "conv": [[8, 3], [8, 2], [8, 2]], "dense": [16, 16], "tta": True,
                "flip": True}
    out = tmp_path_factory.mktemp("tiny") / "run"
    return loop.train(recipe.load("model2", settings), synthetic_files["training.csv"], out,
                          log=lambda s: None)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_run) -> Path:
    from facekeypoints.inference import loading
    from facekeypoints.inference.export import export_onnx

    return export_onnx(loading.load(tiny_run.path), tiny_run.path / "model.onnx")


def _made_once(name: str, request, tmp_path_factory) -> None:
    """Fails where two workers both make an EXPENSIVE fixture: a file left out of its list that
    the collection check cannot see (`request.getfixturevalue`), or a scheduler that no longer
    groups (it overrides a private pytest-xdist method)."""
    if getattr(request.config, "workerinput", {}).get("grouped"):  # a worker, our scheduler
        made = tmp_path_factory.getbasetemp().parent / f"{name}.made"  # the workers' common one
        try:
            os.close(os.open(made, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pytest.fail(f"{name} is made in two workers: tests/conftest.py's EXPENSIVE or its "
                        "scheduler no longer keep its users in one", pytrace=False)


@pytest.fixture(scope="session")
def photo_onnx(request, tmp_path_factory, shared_faces) -> Path:
    """A short run of the `photos` recipe on the real faces, exported: keypoints that look like
    a face on real photos (the tracker needs that to follow one), in about half a minute.
    Four epochs (validation RMSE 1.9 px; eight gave 1.7): what its users assert holds with a
    margin, and the face mesh's measured mirror axis does not depend on the epochs. On 800 of
    the rows instead, smoothing no longer steadied the keypoints of a still face."""
    from facekeypoints.inference import loading
    from facekeypoints.inference.export import export_onnx
    from facekeypoints.training import loop, recipe

    _made_once("photo_onnx", request, tmp_path_factory)
    out = tmp_path_factory.mktemp("photos") / "run"
    run = loop.train(recipe.load("photos", {"epochs": 4}), shared_faces / "training.csv.gz",
                         out, log=lambda s: None)
    return export_onnx(loading.load(run.path), run.path / "model.onnx")




# The longest groups start first (seconds in one process, docs/ci.md), so that neither worker
# is left with a long file at the end while the other stands idle; the rest keep their order.
SLOW_FIRST = ("photo_onnx", "tests/test_notebook.py", "tests/test_mesh_net.py",
              "tests/test_batch.py", "tests/test_train.py", "tests/test_builtin.py",
              "tests/test_integration.py", "tests/test_api.py")


def _group(nodeid: str) -> str:
    """The tests that run in one worker: a file, or the files that share an EXPENSIVE fixture
    (by file name: the path in a node id depends on pytest's root folder)."""
    file = nodeid.split("::")[0]
    return next((name for name, files in EXPENSIVE.items() if Path(file).name in files), file)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: pytest alone has no such hook
def pytest_xdist_make_scheduler(config, log):
    """Two pytest-xdist workers (`-n 2 --dist loadfile`, pyproject's addopts) share the two
    cores: the suite in one process keeps 1.3 of them busy on average, waiting on subprocesses,
    Ray's and the servers' start-up and the disk (docs/ci.md). As `loadfile` does, a file runs
    whole in one worker, so its module fixtures are made once; and the files that share an
    EXPENSIVE fixture run in one. (xdist_group marks would say the same, but pytest 9.2 no
    longer lets pytest-xdist 3.8 read them: pytest-dev/pytest-xdist#1386.)"""
    if config.getvalue("dist") != "loadfile":
        return None  # another --dist given on the command line: xdist's own
    from xdist.scheduler import LoadScopeScheduling

    class FileGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    return FileGroups(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """Tells the workers whether the scheduler above groups them (they all see `--dist no`)."""
    node.workerinput["grouped"] = node.config.getvalue("dist") == "loadfile"


def pytest_collection_modifyitems(config, items):
    """The longest groups first (the workers take groups in this order: pyproject's
    --no-loadscope-reorder); a test whose file uses an EXPENSIVE fixture without being listed
    with it fails (a worker's UsageError would reach the terminal without its words)."""
    for item in items:
        for name in set(EXPENSIVE) & set(getattr(item, "fixturenames", ())):
            if _group(item.nodeid) != name:
                item.add_marker(pytest.mark.unlisted(f"{item.nodeid.split('::')[0]} uses {name}:"
                                                     f" add its name to EXPENSIVE[{name!r}] in "
                                                     f"tests/conftest.py"))
    rank = {group: i for i, group in enumerate(SLOW_FIRST)}
    items.sort(key=lambda t: rank.get(_group(t.nodeid), len(rank)))  # stable: the rest as found


def pytest_runtest_setup(item):
    if (unlisted := item.get_closest_marker("unlisted")) is not None:
        pytest.fail(unlisted.args[0], pytrace=False)
