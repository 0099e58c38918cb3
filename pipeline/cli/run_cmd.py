"""`losscape run`."""
from __future__ import annotations

from . import not_built


def register(sub) -> None:
    p = sub.add_parser("run", help="(not built yet)", description="Not built yet.")
    p.set_defaults(func=not_built("run", "see the open issues"))
