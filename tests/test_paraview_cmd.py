"""`lossvista paraview` without ParaView: the command it builds, its errors, the exec into the
GUI (a stand-in executable records what it was given), and the .pvsm data-file rewriting.
The real GUI is tested in tests/paraview/test_gui.py."""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from pipeline.errors import LossvistaError, ParameterError
from pipeline.render import pvsm
from pipeline.render.gui import ENVIRONMENT, paraview_launch
from tests.conftest import as_cli, assert_one_line_error, run_cli

STATE = """<GenericParaViewApplication>
  <ServerManagerState version="5.11.0">
    <Proxy group="sources" type="XMLStructuredGridReader" id="4996" servers="1">
      <Property name="FileName" id="4996.FileName" number_of_elements="1">
        <Element index="0" value="{run}/surface_pca.vts"/>
        <Domain name="files" id="4996.FileName.files"/>
      </Property>
      <Property name="FileNameInfo" id="4996.FileNameInfo" number_of_elements="1">
        <Element index="0" value="{run}/surface_pca.vts"/>
      </Property>
    </Proxy>
    <Proxy group="sources" type="XMLPolyDataReader" id="5528" servers="1">
      <Property name="FileName" id="5528.FileName" number_of_elements="1">
        <Element index="0" value="{run}/trajectory_pca.vtp"/>
      </Property>
    </Proxy>
    <Proxy group="misc" type="Other" id="7" servers="1">
      <Property name="Title" id="7.Title" number_of_elements="1">
        <Element index="0" value="{run}/not a data file"/>
      </Property>
    </Proxy>
  </ServerManagerState>
</GenericParaViewApplication>
"""


def fake_run(root: Path, planes=("pca",), trajectory=True) -> Path:
    """A run directory holding (empty) plane files: the launcher checks that they exist."""
    root.mkdir(parents=True, exist_ok=True)
    for plane in planes:
        (root / f"surface_{plane}.vts").write_text("")
        if trajectory:
            (root / f"trajectory_{plane}.vtp").write_text("")
    return root


def fake_paraview(folder: Path) -> Path:
    """An executable that records its arguments and the variables lossvista sets, then exits."""
    exe = folder / "paraview"
    record = folder / "record.json"
    exe.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                   f"json.dump({{'argv': sys.argv, 'spec': os.environ.get({ENVIRONMENT!r}), "
                   f"'pythonpath': os.environ.get('PYTHONPATH'), 'pid': os.getpid()}}, open({str(record)!r}, 'w'))\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_relative_data_files_rewrites_the_readers_files_only(tmp_path):
    run = tmp_path / "a run & more"
    state = run / "states" / "pca_3d_surface.pvsm"
    state.parent.mkdir(parents=True)
    escaped = str(run).replace("&", "&amp;")
    state.write_text(STATE.format(run=escaped))
    assert pvsm.data_files(state) == [("4996", [f"{run}/surface_pca.vts"]), ("5528", [f"{run}/trajectory_pca.vtp"])]
    pvsm.relative_data_files(state, state.parent)
    text = state.read_text()
    assert pvsm.data_files(state) == [("4996", ["../surface_pca.vts"]), ("5528", ["../trajectory_pca.vtp"])]
    assert text.count('value="../surface_pca.vts"') == 2  # FileName and its FileNameInfo
    assert f'value="{escaped}/not a data file"' in text  # other properties as ParaView wrote them
    assert pvsm.missing_data_files(state) == ["../surface_pca.vts", "../trajectory_pca.vtp"]
    fake_run(run)
    assert pvsm.missing_data_files(state) == []


def test_launch_of_a_run_names_the_gui_script_and_what_it_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/venv")
    run = fake_run(tmp_path / "run", planes=("random", "pca"))
    launch = paraview_launch(run, plane="pca", paraview=fake_paraview(tmp_path))
    assert launch.argv[0] == str(tmp_path / "paraview")
    assert launch.argv[1].startswith("--script=") and launch.argv[1].endswith("gui_state.py")
    assert Path(launch.argv[1][len("--script="):]).is_file()
    assert json.loads(launch.env[ENVIRONMENT]) == launch.spec
    assert {k: launch.spec[k] for k in ("run", "plane", "view")} == {"run": str(run.resolve()), "plane": "pca",
                                                                    "view": "3d_surface"}
    assert Path(launch.spec["plugin"]).is_file() and (Path(launch.spec["states"]) / "landscape_3d_surface.pvsm").is_file()
    assert "PYTHONPATH" not in launch.env  # ParaView's Python keeps its own packages
    # default plane: the first the run has, in display.PLANES' order
    assert paraview_launch(run, paraview=fake_paraview(tmp_path)).spec["plane"] == "random"


@pytest.mark.parametrize("planes, trajectory, kwargs, error, fragments", [
    (None, True, {}, LossvistaError, ["run directory", "not found"]),
    ((), True, {}, LossvistaError, ["has no surface yet", "lossvista run --out"]),
    (("random",), True, {"plane": "pca"}, LossvistaError,
     ["the pca plane", "not been computed yet (no surface_pca.vts)", "lossvista directions", "--kind pca",
      "lossvista surface --run"]),
    (("pca",), False, {"plane": "pca"}, LossvistaError,
     ["no descent path yet (no trajectory_pca.vtp)", "lossvista trajectory --run"]),
    (("pca",), True, {"plane": "sideways"}, ParameterError, ["--plane must be one of", "'sideways'"]),
    (("pca",), True, {"view": "4d"}, ParameterError, ["--view must be one of", "'4d'"]),
])
def test_launch_errors_name_the_problem_and_the_command_that_solves_it(tmp_path, monkeypatch, planes, trajectory,
                                                                      kwargs, error, fragments):
    monkeypatch.setenv("DISPLAY", ":99")
    run = tmp_path / "run"
    if planes is not None:
        fake_run(run, planes, trajectory)
    with pytest.raises(error) as info:
        paraview_launch(run, paraview=fake_paraview(tmp_path), **kwargs)
    for fragment in fragments:
        assert fragment in as_cli(info.value), as_cli(info.value)


def test_launch_needs_paraview_and_a_display(tmp_path, monkeypatch):
    run = fake_run(tmp_path / "run")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(LossvistaError, match=r"paraview not found on PATH: install ParaView's GUI \(Debian: apt"):
        paraview_launch(run)
    monkeypatch.delenv("DISPLAY")
    with pytest.raises(LossvistaError, match="no DISPLAY: .* under xvfb-run"):
        paraview_launch(run, paraview=fake_paraview(tmp_path))
    assert paraview_launch(run, paraview=fake_paraview(tmp_path), check_display=False).spec["plane"] == "pca"


def test_launch_of_a_state_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DISPLAY", ":99")
    run = fake_run(tmp_path / "run")
    state = run / "states" / "pca_3d_surface.pvsm"
    state.parent.mkdir()
    state.write_text(STATE.format(run=run))
    pvsm.relative_data_files(state, state.parent)
    launch = paraview_launch(state, paraview=fake_paraview(tmp_path))
    assert launch.spec["state"] == str(state.resolve()) and "run" not in launch.spec
    with pytest.raises(ParameterError, match="a state file holds its own plane and view"):
        paraview_launch(state, view="3d_mesh", paraview=fake_paraview(tmp_path))
    (run / "surface_pca.vts").unlink()
    with pytest.raises(LossvistaError, match=r"reads \.\./surface_pca\.vts, not found from its folder"):
        paraview_launch(state, paraview=fake_paraview(tmp_path))
    with pytest.raises(LossvistaError, match="state file .* not found"):
        paraview_launch(run / "states" / "nothing.pvsm", paraview=fake_paraview(tmp_path))


def test_cli_execs_paraview_with_the_start_up_script(tmp_path):
    run = fake_run(tmp_path / "run", planes=("pca",))
    exe = fake_paraview(tmp_path)
    proc = run_cli("paraview", str(run), "--view", "2d_contours", "--paraview", str(exe),
                   env={"DISPLAY": ":99", "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["argv"][1].startswith("--script=") and record["argv"][1].endswith("gui_state.py")
    spec = json.loads(record["spec"])
    assert (spec["run"], spec["plane"], spec["view"]) == (str(run.resolve()), "pca", "2d_contours")
    assert record["pythonpath"] is None


def test_cli_dry_run_prints_the_command(tmp_path):
    run = fake_run(tmp_path / "run", planes=("pca",))
    exe = fake_paraview(tmp_path)
    proc = run_cli("paraview", str(run), "--dry-run", "--paraview", str(exe), env={"DISPLAY": ""})
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith(f"{ENVIRONMENT}='") and f" {exe} --script=" in line and '"plane": "pca"' in line
    assert not (tmp_path / "record.json").exists()


@pytest.mark.parametrize("args, fragments", [
    (["nope"], ["lossvista paraview: error: run directory", "not found"]),
    (["RUN", "--plane", "pca"], ["the pca plane", "lossvista surface --run"]),
    (["RUN", "--dry-run"], ["has no surface yet"]),
])
def test_cli_errors_are_one_line(tmp_path, args, fragments):
    run = tmp_path / "run"
    run.mkdir()
    proc = run_cli("paraview", *[str(run) if a == "RUN" else str(tmp_path / a) if a == "nope" else a for a in args])
    assert_one_line_error(proc, *fragments)


def test_cli_help_names_every_option():
    proc = run_cli("paraview", "--help")
    assert proc.returncode == 0
    for option in ("RUN|STATE.pvsm", "--plane", "--view", "--paraview", "--dry-run", "xvfb-run", "File > Load State"):
        assert option in proc.stdout, option
