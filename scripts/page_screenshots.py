"""Screenshots of a run's page in headless Chromium, offline: each plane in 3D and as 2D contour
lines, and one with the cursor on the surface (docs/page/ for docs/gallery.md).

    .venv/bin/python scripts/page_screenshots.py runs/demo docs/page

Writes ``RUN/index.html`` first (``lossvista export RUN --format html``), then
``<plane>_<view>.png`` and ``hover.png`` into the output folder. Needs Debian's chromium.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.run import open_run  # noqa: E402
from tests.browser.cdp import Chromium  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, nargs=2, default=(1400, 1000), metavar=("W", "H"))
    args = parser.parse_args()
    run = open_run(args.run)
    page_file = run.write_page()
    args.out.mkdir(parents=True, exist_ok=True)
    with Chromium(width=args.size[0], height=args.size[1]) as browser:
        page = browser.open(page_file.resolve().as_uri())
        page.evaluate("window.lossvista.ready")
        for k, plane in enumerate(run.planes):
            for view in ("3d", "2d"):
                page.evaluate(f"window.lossvista.show({{plane: {k}, view: '{view}', array: 'loss'}})")
                page.mouse("mouseMoved", 2, 2)  # away from the plot: no hover label
                page.frames(5)
                time.sleep(0.5)
                path = args.out / f"{plane}_{view}.png"
                path.write_bytes(page.screenshot())
                print(path)
        # the cursor on the PCA plane's 2D view: Plotly's label and the readout below the plot
        k = run.planes.index("pca") if "pca" in run.planes else 0
        page.evaluate(f"window.lossvista.show({{plane: {k}, view: '2d', array: 'loss'}})")
        page.frames(5)
        x, y = page.evaluate("(() => { const gd = document.getElementById('lossvista-plot'), fl = gd._fullLayout, "
                             "r = gd.getBoundingClientRect(); return [r.left + fl.xaxis._offset + 0.7 * fl.xaxis._length,"
                             " r.top + fl.yaxis._offset + 0.35 * fl.yaxis._length]; })()")
        page.mouse("mouseMoved", x, y)
        page.wait_for(lambda: page.evaluate("'i' in document.getElementById('lossvista-readout').dataset"), "hover")
        page.frames(5)
        (args.out / "hover.png").write_bytes(page.screenshot())
        print(args.out / "hover.png")
        errors = page.errors()
    if errors:
        print("page errors:", *errors, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
