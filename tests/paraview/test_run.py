"""`lossvista run` with ParaView: a real (small) digits run rendered through the states by pvbatch."""
import subprocess
import sys

import pytest

from conftest import HANG_GUARD, ROOT, picture_stats

pytestmark = pytest.mark.paraview


def test_run_renders_all_eight_views(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "-q", "run", "--out", str(out), "--epochs", "4",
                           "--grid", "9", "--max-samples", "300", "--backend", "paraview"],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr
    for plane in ("random", "pca"):
        for view in ("2d_contours", "3d_contours", "3d_mesh", "3d_surface"):
            stats = picture_stats(out / "renders" / f"{plane}_{view}.png")
            assert stats["drawn"] > 0.02, (plane, view, stats)  # not blank (a 9x9 wireframe is thin)
            if plane == "pca":
                # the descent path's red tube; on a random plane a real path projects to a few pixels
                # around the centre (random directions are nearly orthogonal to it), under the end marker
                assert stats["red"] > 100, (plane, view, stats)
