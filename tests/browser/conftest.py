"""Browser tests: the run's page in a real headless Chromium (Debian's ``chromium``), offline.

They need the ``chromium`` package (``scripts/install_system.sh`` installs it, as root, with
ParaView) and websocket-client (the ``dev`` extra). Without them every test here is skipped
with the reason, unless ``LOSSVISTA_REQUIRE_BROWSER=1`` (CI): then they fail.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ..conftest import require, run_cli
from .cdp import Chromium, find_chromium


def _missing() -> list[str]:
    missing = [] if find_chromium() else ["chromium"]
    if importlib.util.find_spec("websocket") is None:
        missing.append("websocket-client")
    return missing


@pytest.fixture(autouse=True)
def _browser_required():
    """Skip (or, with LOSSVISTA_REQUIRE_BROWSER=1, fail) when Chromium or websocket-client is missing."""
    missing = _missing()
    require(missing, f"browser tests need {' and '.join(missing)} (Debian: apt install chromium; "
                     f"pip install -e '.[dev]'; 'make system' installs chromium as root)", "LOSSVISTA_REQUIRE_BROWSER")


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for a module's tests (each test opens its own tab)."""
    if _missing():
        pytest.skip("no chromium")
    with Chromium() as b:
        yield b


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """A small run made by ``lossvista run`` (digits, 4 epochs, 15 x 15 planes), with its index.html."""
    out = tmp_path_factory.mktemp("browser") / "demo"
    proc = run_cli("run", "--out", str(out), "--epochs", "4", "--grid", "15", "--backend", "none",
                   "--max-samples", "400")
    assert proc.returncode == 0, proc.stderr
    assert (out / "index.html").is_file()
    return out


def viridis_share(png: bytes) -> float:
    """Share of the picture's pixels that have a colour of the viridis map (and are not grey)."""
    import io

    from matplotlib import colormaps
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int32)[::2, ::2].reshape(-1, 3)
    palette = (np.asarray(colormaps["viridis"](np.linspace(0, 1, 64)))[:, :3] * 255).astype(np.int32)
    coloured = rgb.max(axis=1) - rgb.min(axis=1) > 40
    near = np.zeros(len(rgb), bool)
    for c in palette:
        near |= np.abs(rgb - c).sum(axis=1) < 45
    return float((near & coloured).mean())


def changed_share(a: bytes, b: bytes) -> float:
    """Share of pixels that differ between two screenshots of the same size."""
    import io

    from PIL import Image

    x = np.asarray(Image.open(io.BytesIO(a)).convert("RGB")).astype(np.int32)
    y = np.asarray(Image.open(io.BytesIO(b)).convert("RGB")).astype(np.int32)
    assert x.shape == y.shape
    return float((np.abs(x - y).sum(axis=-1) > 30).mean())
