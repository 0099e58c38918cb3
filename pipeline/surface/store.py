"""The chunk store: a surface's finished points, persisted in small checksummed files (or kept in memory).

numpy only (no torch). The grid's flat points are cut into fixed chunks
(:class:`~pipeline.surface.plan.ChunkPlan`); each finished chunk is kept as one small file.

Work directory ``<out>.parts/`` (e.g. ``surface_random.vts.parts/``)::

    manifest.json         fingerprint of the configuration + the chunk plan + surface metadata
    chunk_000000.bin ...  one file per finished chunk (written atomically: temp file + rename)
    chunk_000007.bin.corrupt-<time>   a chunk that failed its checksum, moved aside (kept)

Chunk file layout: a magic line ``LOSSCAPE-CHUNK 1``, one line of JSON (chunk number, point
range, fingerprint, payload size and SHA-256, what the evaluator reported), then the payload:
an ``.npz`` archive of the arrays ``coords`` (n, 2) (``(n, 3)`` for a volume), ``loss``,
``bounded``, ``samples`` (n,)
and any further float64 values per point: ``accuracy`` (class outputs), the user's metrics and,
when both splits were evaluated, ``test_loss``, ``test_accuracy`` and ``test_<metric>``. A
truncated file, a flipped bit, a chunk of another configuration or of other points is
reported as :class:`CorruptChunkError`.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..atomic import write_bytes
from ..errors import LossvistaError, param
from .plan import ChunkPlan

log = logging.getLogger(__name__)

__all__ = ["ChunkStore", "MemoryStore", "ChunkData", "CorruptChunkError", "ConfigMismatchError", "parts_dir",
           "fingerprint_of", "chunk_payload", "ARRAYS", "array_dtype"]

MAGIC = b"LOSSCAPE-CHUNK 1\n"
MANIFEST_FORMAT = 1
ARRAYS = {"loss": np.float64, "bounded": np.bool_, "samples": np.int64}  # every chunk has these
_VALUE_NAME = re.compile(r"^[A-Za-z_]\w*$")  # any other array: float64 values per point
_CHUNK_RE = re.compile(r"^chunk_(\d{6,})\.bin$")


class CorruptChunkError(LossvistaError):
    """A chunk file is truncated, fails its checksum, or belongs to other points/configuration.

    ``reason`` is the short cause (e.g. ``"checksum mismatch"``).
    """

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


class ConfigMismatchError(LossvistaError):
    """The work directory holds chunks of another configuration."""


def parts_dir(out: str | os.PathLike) -> Path:
    """The work directory beside the output file: ``surface_random.vts`` -> ``surface_random.vts.parts``."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def fingerprint_of(identity: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``identity`` (sorted keys)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), allow_nan=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ChunkData:
    """One finished chunk: points ``start:stop`` and their ``arrays`` (name -> (n,) array)."""

    chunk: int
    start: int
    stop: int
    coords: np.ndarray  # (n, 2) float64; (n, 3) for a volume
    arrays: dict[str, np.ndarray]
    info: dict[str, Any]  # what the evaluator reported (e.g. the engine's resolved plan)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class ChunkStore:
    """The work directory of one surface (see the module docstring for the layout)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # -- paths ---------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def chunk_path(self, c: int) -> Path:
        return self.root / f"chunk_{c:06d}.bin"

    def exists(self) -> bool:
        return self.root.is_dir()

    # -- manifest ------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when the directory has none. A damaged manifest is an error
        (:meth:`open` and :meth:`repair_manifest` rebuild it)."""
        try:
            text = self.manifest_path.read_text()
        except FileNotFoundError:
            return None
        manifest = _parse_manifest(text)
        if manifest is None:
            raise ManifestDamagedError(f"{self.manifest_path} is damaged")
        return manifest

    def repair_manifest(self, identity: Mapping[str, Any], plan: ChunkPlan, meta: Mapping[str, Any] | None = None
                        ) -> dict[str, Any] | None:
        """A damaged manifest rewritten for ``identity`` (None when there is none, or it is intact).

        Nothing is lost: every chunk carries its configuration's fingerprint in its checksummed
        header, so the chunks of ``identity`` are used again and any other is moved aside by
        :meth:`scan`, never deleted.
        """
        try:
            self.read_manifest()
            return None
        except ManifestDamagedError:
            pass
        log.warning("%s is damaged; rebuilt for this configuration from the checksummed chunks", self.manifest_path)
        manifest = self._new_manifest(identity, plan, meta)
        write_bytes(self.manifest_path, _manifest_text(manifest))
        return manifest

    def _new_manifest(self, identity: Mapping[str, Any], plan: ChunkPlan, meta: Mapping[str, Any] | None
                      ) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "fingerprint": fingerprint_of(identity), "identity": dict(identity),
                "plan": plan.to_dict(), "meta": dict(meta or {}), "created": _now()}

    def open(self, identity: Mapping[str, Any], plan: ChunkPlan, meta: Mapping[str, Any] | None = None, *,
             restart: bool = False) -> dict[str, Any]:
        """Create the directory and manifest, or check an existing one against ``identity`` and ``plan``.

        Raises :class:`ConfigMismatchError` (one line, names what differs) when the directory
        holds another configuration and ``restart`` is False; with ``restart`` the old directory
        is removed first. Safe when several shard jobs open the same directory at once.
        """
        if restart and self.root.exists():
            log.info("discarding %s (restart)", self.root)
            self.remove()
        self.root.mkdir(parents=True, exist_ok=True)
        manifest = self._new_manifest(identity, plan, meta)
        if write_bytes(self.manifest_path, _manifest_text(manifest), exclusive=True):
            return manifest
        repaired = self.repair_manifest(identity, plan, meta)
        if repaired is not None:
            return repaired
        existing = self.read_manifest()
        if existing is None:  # removed between our link attempt and the read (a concurrent restart)
            raise LossvistaError(f"{self.manifest_path} vanished while opening {self.root}; rerun the command")
        self.check(existing, identity, plan)
        return existing

    def check(self, manifest: Mapping[str, Any], identity: Mapping[str, Any], plan: ChunkPlan,
              remedy: str = f"pass {param('restart')} to discard them, or choose another {param('out')}") -> None:
        """Raise :class:`ConfigMismatchError` unless ``manifest`` was made for ``identity`` and ``plan``."""
        if manifest.get("fingerprint") == fingerprint_of(identity) and manifest.get("plan") == plan.to_dict():
            return
        old, new = _flat(manifest.get("identity") or {}), _flat(identity)
        diffs = [f"{k}: {_short(old.get(k))} vs {_short(new.get(k))}"
                 for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if manifest.get("plan") != plan.to_dict():
            diffs.append(f"chunks: {_short(manifest.get('plan'))} vs {_short(plan.to_dict())}")
        raise ConfigMismatchError(
            f"{self.root} holds partial results of another configuration ({'; '.join(diffs[:3]) or 'fingerprint'}"
            f"{'; ...' if len(diffs) > 3 else ''}); {remedy}")

    # -- chunks --------------------------------------------------------------------------------
    def write_chunk(self, c: int, start: int, stop: int, coords: np.ndarray, arrays: Mapping[str, np.ndarray],
                    fingerprint: str, info: Mapping[str, Any] | None = None) -> Path:
        """Persist chunk ``c`` atomically with its checksum; ``info`` (JSON) goes into the header."""
        payload = chunk_payload(start, stop, coords, arrays)
        buf = io.BytesIO()
        np.savez(buf, **payload)
        body = buf.getvalue()
        header = {"chunk": c, "start": start, "stop": stop, "fingerprint": fingerprint, "nbytes": len(body),
                  "sha256": hashlib.sha256(body).hexdigest(), "arrays": sorted(payload), "info": dict(info or {})}
        path = self.chunk_path(c)
        write_bytes(path, MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + body)
        return path

    def read_chunk(self, c: int, plan: ChunkPlan, fingerprint: str) -> ChunkData:
        """Read and verify chunk ``c``; :class:`CorruptChunkError` says what is wrong."""
        path = self.chunk_path(c)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise CorruptChunkError(f"{path} cannot be read ({exc})", f"unreadable: {exc.strerror}") from None
        bad = lambda why: CorruptChunkError(f"{path} is corrupted ({why})", why)  # noqa: E731
        if not raw.startswith(MAGIC):
            raise bad("not a lossvista chunk file")
        head, sep, body = raw[len(MAGIC):].partition(b"\n")
        try:
            header = json.loads(head)
            nbytes, digest = int(header["nbytes"]), str(header["sha256"])
        except (ValueError, KeyError, TypeError):
            raise bad("unreadable header") from None
        if not sep or len(body) != nbytes:
            raise bad(f"truncated: {len(body)} of {nbytes} payload bytes")
        if hashlib.sha256(body).hexdigest() != digest:
            raise bad("checksum mismatch")
        start, stop = plan.bounds(c)
        if (header.get("chunk"), header.get("start"), header.get("stop")) != (c, start, stop):
            raise bad(f"holds points {header.get('start')}:{header.get('stop')}, expected {start}:{stop}")
        if header.get("fingerprint") != fingerprint:
            raise bad("written for another configuration")
        try:
            with np.load(io.BytesIO(body), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, EOFError) as exc:
            raise bad(f"unreadable payload: {exc}") from None
        n = stop - start
        coords = arrays.pop("coords", None)
        missing = [k for k in ARRAYS if k not in arrays]
        if coords is None or coords.ndim != 2 or coords.shape[0] != n or coords.shape[1] not in (2, 3) or missing \
                or any(a.shape != (n,) for a in arrays.values()):
            raise bad("arrays missing or of the wrong shape")
        info = header.get("info") if isinstance(header.get("info"), dict) else {}
        return ChunkData(c, start, stop, coords, arrays, info)

    def chunk_ids(self) -> list[int]:
        """Chunk numbers with a file present (not verified), ascending."""
        if not self.root.is_dir():
            return []
        found = (_CHUNK_RE.match(p.name) for p in self.root.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def quarantine(self, c: int) -> Path:
        """Move a bad chunk file aside (kept for inspection) so that it is recomputed."""
        src = self.chunk_path(c)
        dst = src.with_name(f"{src.name}.corrupt-{_dt.datetime.now().strftime('%Y%m%dT%H%M%S%f')}")
        os.replace(src, dst)
        return dst

    def scan(self, plan: ChunkPlan, fingerprint: str) -> tuple[list[int], dict[int, str]]:
        """Verify every chunk file present: ``(good chunk numbers, {bad chunk: message})``."""
        good: list[int] = []
        bad: dict[int, str] = {}
        for c in self.chunk_ids():
            if c >= plan.n_chunks:
                bad[c] = f"{self.chunk_path(c)} is beyond the plan's {plan.n_chunks} chunks"
                continue
            try:
                self.read_chunk(c, plan, fingerprint)
            except FileNotFoundError:
                continue
            except CorruptChunkError as exc:
                bad[c] = str(exc)
            else:
                good.append(c)
        return good, bad

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=False)


class ManifestDamagedError(LossvistaError):
    """The manifest cannot be parsed (a crash while it was replaced by another tool, a bit flip)."""


def _parse_manifest(text: str) -> dict[str, Any] | None:
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError:
        return None
    ok = isinstance(manifest, dict) and "fingerprint" in manifest and "plan" in manifest
    return manifest if ok else None


def _manifest_text(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, allow_nan=True, default=str) + "\n").encode()


def array_dtype(name: str) -> Any:
    """The dtype a chunk stores the array ``name`` in: the fixed ones, else float64 values."""
    if name in ARRAYS:
        return ARRAYS[name]
    if name == "coords" or not _VALUE_NAME.match(name):
        raise ValueError(f"chunk array names must be identifiers other than 'coords'; got {name!r}")
    return np.float64


def chunk_payload(start: int, stop: int, coords: np.ndarray, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of chunk ``start:stop`` checked and cast to their dtypes (``coords`` (n, 2) or (n, 3) included)."""
    n = stop - start
    payload = {"coords": np.ascontiguousarray(coords, dtype=np.float64).reshape(n, -1)}
    for name, arr in arrays.items():
        dtype = array_dtype(name)
        a = np.asarray(arr).astype(dtype, copy=False).reshape(-1)
        if a.shape != (n,):
            raise ValueError(f"chunk array {name!r} must have shape ({n},); got {a.shape}")
        payload[name] = a
    return payload


class MemoryStore:
    """Finished chunks kept in memory: the store of a surface evaluated without a work directory
    (:func:`pipeline.surface.evaluate`). Same ``write_chunk``/``read_chunk`` as :class:`ChunkStore`."""

    root = None

    def __init__(self) -> None:
        self._chunks: dict[int, ChunkData] = {}

    def write_chunk(self, c: int, start: int, stop: int, coords: np.ndarray, arrays: Mapping[str, np.ndarray],
                    fingerprint: str, info: Mapping[str, Any] | None = None) -> None:
        payload = chunk_payload(start, stop, coords, arrays)
        self._chunks[c] = ChunkData(c, start, stop, payload.pop("coords"), payload, dict(info or {}))

    def read_chunk(self, c: int, plan: ChunkPlan, fingerprint: str) -> ChunkData:
        if c not in self._chunks:
            raise FileNotFoundError(f"chunk {c} was not evaluated")
        return self._chunks[c]


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"eval": {"cap": 3}}`` -> ``{"eval.cap": 3}`` (so a refusal names the very setting)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
