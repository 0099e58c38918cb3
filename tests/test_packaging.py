"""The distribution: every package of pipeline/ is listed in pyproject.toml, and the layout rules hold."""
from __future__ import annotations

import tomllib

from .conftest import ROOT


def test_pyproject_lists_every_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "pipeline").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
    assert {"pipeline.states", "pipeline.paraview_plugins"} <= listed


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "pipeline").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_the_command_and_the_distribution_are_lossvista():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["name"] == "lossvista" and meta["scripts"] == {"lossvista": "pipeline.cli:main"}


def _sources():
    for folder in ("pipeline", "paraview_plugins", "states"):
        yield from (ROOT / folder).rglob("*.py")


def test_code_speaks_of_the_code():
    import re

    pattern = re.compile(r"issue [0-9]|DESIGN\.md", re.IGNORECASE)
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in _sources()
            for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


def test_one_definition_of_each_shared_rule():
    """Functions, not the methods that delegate to them (``Grid.centre_index``, ``Surface.usable``)."""
    import re

    counts = {name: sum(len(re.findall(rf"^def {name}\(", p.read_text(), re.MULTILINE)) for p in _sources())
              for name in ("default_cap", "resolve_device", "usable_mask", "centre_index", "epoch_of")}
    assert counts == dict.fromkeys(counts, 1), counts
