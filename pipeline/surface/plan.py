"""Which points go into which chunk, and which chunks a shard owns. Pure Python.

A surface of ``P = nx * ny`` points (flat index ``k = i * ny + j``, the C order of
:meth:`pipeline.datamodel.Grid.coords`) is cut into fixed chunks of ``chunk_size`` consecutive
points. The cut depends only on the configuration (grid size and chunk size), never on
where an earlier run stopped or on how many processes share the work, so a resumed or
distributed surface is assembled from exactly the pieces an uninterrupted run computes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..errors import ParameterError, param

__all__ = ["ChunkPlan", "Shard", "auto_chunk_size", "missing_chunks"]


def auto_chunk_size(n_points: int) -> int:
    """Points per chunk when not given: about 64 chunks, at least 8 and at most 256 points each.

    Depends on the grid size only (not on the number of processes), so the same command cuts
    the grid the same way whether it runs alone, under torchrun or as array-job shards.
    """
    return int(min(256, max(8, -(-n_points // 64))))


@dataclass(frozen=True)
class ChunkPlan:
    """``n_points`` flat grid points cut into chunks of ``chunk_size`` (the last may be shorter)."""

    n_points: int
    chunk_size: int

    def __post_init__(self) -> None:
        if not (isinstance(self.n_points, int) and self.n_points >= 1):
            raise ValueError(f"n_points must be a positive integer; got {self.n_points!r}")
        if not (isinstance(self.chunk_size, int) and self.chunk_size >= 1):
            raise ValueError(f"chunk_size must be a positive integer; got {self.chunk_size!r}")

    @property
    def n_chunks(self) -> int:
        return -(-self.n_points // self.chunk_size)

    def bounds(self, c: int) -> tuple[int, int]:
        """``(start, stop)`` flat point indices of chunk ``c``."""
        if not 0 <= c < self.n_chunks:
            raise IndexError(f"chunk must be in 0..{self.n_chunks - 1}; got {c}")
        start = c * self.chunk_size
        return start, min(start + self.chunk_size, self.n_points)

    def to_dict(self) -> dict[str, int]:
        return {"n_points": self.n_points, "chunk_size": self.chunk_size, "n_chunks": self.n_chunks}


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the chunks ``c`` with ``c % count == index`` (interleaved)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.count, int) and self.count >= 1 and isinstance(self.index, int)
                and 0 <= self.index < self.count):
            raise ValueError(f"shard must be i/k with 0 <= i < k; got {self.index}/{self.count}")

    @classmethod
    def parse(cls, spec: str) -> "Shard":
        """``"i/k"`` (e.g. ``"0/4"``; 0-based, so ``$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`` fits)."""
        parts = str(spec).split("/")
        try:
            if len(parts) != 2:
                raise ValueError
            i, k = int(parts[0]), int(parts[1])
        except ValueError:
            raise ParameterError(f"{param('shard')} must look like 'i/k' with 0 <= i < k (e.g. '0/4'); "
                                 f"got {spec!r}") from None
        if not (k >= 1 and 0 <= i < k):
            raise ParameterError(f"{param('shard')} must look like 'i/k' with 0 <= i < k (e.g. '0/4'); got {spec!r}")
        return cls(i, k)

    def owns(self, c: int) -> bool:
        return c % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def missing_chunks(plan: ChunkPlan, done: Iterable[int], shard: Shard | None = None) -> list[int]:
    """Chunk numbers of ``plan`` (of ``shard`` only, when given) not in ``done``, ascending."""
    have = set(done)
    return [c for c in range(plan.n_chunks) if c not in have and (shard is None or shard.owns(c))]
