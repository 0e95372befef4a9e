"""The base install (pyproject's dependencies alone) runs inference: `fk.Landmarker`,
`fk.detect` and `detect` import none of the packages of the `train` and `hog` extras, and a
command that needs one says which extra in one line. Here the extras' packages are made
unimportable in a subprocess, as they are in a base install (.ci/check-wheel installs the
real base wheel in a fresh venv)."""

import json
import subprocess
import sys
import tomllib

from .conftest import ROOT, SHARED

PHOTO = SHARED / "photos" / "youtube" / "Lincoln_Chafee_52.jpg"
LEFT_OUT = ("pandas", "matplotlib", "keras", "tensorflow", "onnx", "tf2onnx", "dlib", "pydot",
            "tensorboard")
BLOCK = f"""
import sys

class LeftOut:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {LEFT_OUT!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, LeftOut())
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return _run("from facekeypoints.cli import main; main()", *args)


def test_the_base_dependencies_leave_the_extras_packages_out():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    assert not [p for p in LEFT_OUT if p in base.replace("onnxruntime", "")], base
    extras = project["optional-dependencies"]
    assert any("tensorflow" in d for d in extras["train"]) and "dlib" in extras["hog"][0]
    assert "facekeypoints[all]" in extras["dev"]  # the README's install: everything


def test_the_landmarker_and_detect_run_without_the_extras(tmp_path):
    code = ("import facekeypoints as fk; r = fk.Landmarker().detect(sys.argv[1]); "
            "print(r.points.shape, len(fk.detect(sys.argv[1])), "
            "sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{LEFT_OUT!r}))")
    done = _run(code, str(PHOTO))
    assert done.stdout.strip() == "(1, 15, 2) 1 []", done.stderr[-2000:]
    done = _cli("detect", str(PHOTO), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr[-2000:]
    (record,) = json.loads((tmp_path / "out" / "keypoints.json").read_text())
    assert len(record["faces"]) == 1 and (tmp_path / "out" / "annotated").is_dir()


def test_a_command_that_needs_an_extra_says_which_in_one_line(tmp_path):
    for args, extra in [(["train", "--recipe", "fast", "--data", "x.csv"], "train"),
                        (["evaluate-photos", str(PHOTO.parent), "--truth",
                          str(PHOTO.parent / "keypoints15.csv")], "train"),
                        (["detect", str(PHOTO), "--detector", "hog", "--out",
                          str(tmp_path / "hog")], "hog")]:
        done = _cli(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
        assert f"pip install 'facekeypoints[{extra}]'" in lines[0], lines
        what = "--detector hog" if extra == "hog" else args[0]
        assert lines[0].startswith(f"facekeypoints: error: {what} needs "), lines


def test_a_ray_job_without_ray_says_so_before_it_writes_anything(tmp_path):
    out = tmp_path / "rayout"
    code = ("sys.meta_path.insert(0, type('NoRay', (), {'find_spec': staticmethod("
            "lambda name, *a: (_ for _ in ()).throw(ModuleNotFoundError(name=name)) "
            "if name.split('.')[0] == 'ray' else None)})()); "
            "from facekeypoints.cli import main; main()")
    done = _run(code, "detect", str(PHOTO), "--engine", "ray", "--out", str(out))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert "detect --engine ray needs ray" in lines[0] and "facekeypoints[ray]" in lines[0]
    assert not out.exists()  # no plan written: the same --out takes a local job at once
    assert _cli("detect", str(PHOTO), "--out", str(out), "--no-draw").returncode == 0
