"""The README's Python API example runs as written (on a trained digits run, a smaller grid)."""
from __future__ import annotations

import re

import numpy as np

from .conftest import ROOT


def _api_example() -> str:
    blocks = [b for b in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
              if 'Run("runs/demo")' in b]
    assert len(blocks) == 1, "the README should have exactly one Python API example on runs/demo"
    return blocks[0]


def test_readme_python_example_runs(digits_run, capsys):
    code = _api_example()
    # the same code on the test run and an 11 x 11 grid (the README's 51 x 51 takes ~15 s)
    for old, new in (('"runs/demo"', repr(str(digits_run))), ("Grid(-1, 1, 51, -1, 1, 51)", "Grid(-1, 1, 11, -1, 1, 11)"),
                     ("surface.loss[25, 25]", "surface.loss[5, 5]")):
        assert old in code, old
        code = code.replace(old, new)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    surface, topo = namespace["surface"], namespace["topo"]
    assert surface.loss.shape == (11, 11) and np.isfinite(surface.loss).all()
    assert topo.counts()["minimum"] >= 1
    assert "Minimum(label=0" in capsys.readouterr().out
