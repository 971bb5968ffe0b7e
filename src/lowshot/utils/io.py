"""Atomic file writes, JSON and safetensors checkpoints.

Every write goes to a temporary file in the target directory and is renamed into place,
so a killed run never leaves a half-written result, history or checkpoint behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lowshot.errors import LowshotError

if TYPE_CHECKING:  # torch is imported lazily: reading JSON must not cost a torch import
    import torch

TEMP_SUFFIX = ".tmp"


class CorruptFileError(LowshotError, ValueError):
    """A file lowshot wrote earlier (JSON record, result, checkpoint) cannot be read back."""


def _exclusive_name(parent: Path, prefix: str, suffix: str) -> Path:
    return parent / f"{prefix}{secrets.token_hex(4)}{suffix}"


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A new, uniquely named folder in ``parent`` with the umask's permissions.

    Unlike :func:`tempfile.mkdtemp` (always 0700), the folder gets ``0777 & ~umask``, so a
    tree built in it and renamed into place is as readable as any other folder the user makes.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        path = _exclusive_name(parent, prefix, "")
        try:
            path.mkdir(mode=0o777)
            return path
        except FileExistsError:
            continue


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary file is created with mode ``0666 & ~umask`` (not :func:`tempfile.mkstemp`'s
    0600), so outputs get the same permissions as files the user creates. A process killed
    while writing leaves ``.<name>.<random>.tmp`` behind; :func:`remove_orphan_temps` cleans it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp_path = _exclusive_name(path.parent, f".{path.name}.", TEMP_SUFFIX)
        try:
            os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_orphan_temps(directory: Path) -> list[Path]:
    """Delete the temporary files of :func:`atomic_path` that a killed process left in ``directory``.

    Only call this where no other process writes (a run directory being resumed).
    """
    removed = sorted(Path(directory).glob(f".*{TEMP_SUFFIX}"))
    for tmp in removed:
        tmp.unlink(missing_ok=True)
    return removed


def to_dict(obj: Any) -> Any:
    """Dataclass (possibly nested, with tuples/paths) -> plain YAML/JSON-safe data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def yaml_text(data: Any) -> str:
    """``data`` (dataclass or mapping) as YAML, keys in their order (what run dirs hold)."""
    import yaml

    return yaml.safe_dump(to_dict(data), sort_keys=False)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite(obj: Any) -> Any:
    """Replace NaN/inf floats by None so the JSON stays standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically.

    NaN/inf floats become ``null``; arrays/tensors (``tolist``) become lists and paths strings.

    Raises:
        TypeError: a value that is none of these and not JSON-serialisable.
    """
    atomic_write_text(path, json.dumps(_finite(data), indent=2, default=_json_default) + "\n")


def read_json(path: Path) -> Any:
    """Parse a JSON file.

    Raises:
        CorruptFileError: the file is empty, truncated or not JSON (names the file).
    """
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(f"{path} is not valid JSON (truncated or corrupt?): {err}") from None


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def save_state(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> str:
    """Save a flat tensor dict (tensors of any shape, moved to CPU) as safetensors, atomically.

    Returns:
        The hex SHA-256 of the written file.
    """
    from safetensors.torch import save_file

    flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        mode = tmp.stat().st_mode  # 0666 & ~umask; safetensors recreates the file as 0600
        save_file(flat, str(tmp), metadata=dict(metadata or {}))
        os.chmod(tmp, mode)
        digest = sha256_file(tmp)
    return digest


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file into a name -> tensor dict (each tensor in its saved shape).

    Raises:
        CorruptFileError: the file is empty, truncated or not safetensors (names the file).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except SafetensorError as err:
        raise CorruptFileError(f"{path} is not a readable safetensors file (truncated or corrupt?): {err}") from None


def flatten_state(prefix: str, state: Any, out: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Flatten a nested (optimizer) state dict into tensors + JSON-able leftovers."""
    import torch

    if isinstance(state, torch.Tensor):
        out[prefix] = state
    elif isinstance(state, Mapping):
        for k, v in state.items():
            flatten_state(f"{prefix}/{k}" if prefix else str(k), v, out, meta)
    elif isinstance(state, (list, tuple)):
        meta[prefix + "#len"] = len(state)
        meta[prefix + "#type"] = type(state).__name__
        for i, v in enumerate(state):
            flatten_state(f"{prefix}/{i}", v, out, meta)
    else:
        meta[prefix] = state


def unflatten_state(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> Any:
    """Inverse of :func:`flatten_state` (keys of mappings come back as str or int).

    Tensors keep the shape they were flattened with.
    """
    root: dict[str, Any] = {}
    for key, value in list(tensors.items()) + [(k, v) for k, v in meta.items() if "#" not in k]:
        parts = key.split("/")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def fix(node: Any, prefix: str) -> Any:
        if not isinstance(node, dict):
            return node
        if prefix + "#len" in meta:
            n = meta[prefix + "#len"]
            items = [fix(node[str(i)], f"{prefix}/{i}") for i in range(n)]
            return tuple(items) if meta[prefix + "#type"] == "tuple" else items
        return {
            (int(k) if k.lstrip("-").isdigit() else k): fix(v, f"{prefix}/{k}" if prefix else k)
            for k, v in node.items()
        }

    return fix(root, "")



def pack_state(obj: Any) -> dict[str, torch.Tensor]:
    """Nested state (model/optimizer/scheduler/RNG dicts) -> flat tensors for safetensors.

    Tensor leaves keep their shapes under ``/``-joined keys; non-tensor leaves travel as one JSON
    document stored in the ``__meta__`` uint8 tensor of shape ``(n_bytes,)``.
    """
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    flatten_state("", obj, tensors, meta)
    import torch

    blob = json.dumps(meta).encode("utf-8")
    tensors["__meta__"] = torch.frombuffer(bytearray(blob), dtype=torch.uint8).clone()
    return tensors


def unpack_state(tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack_state`: the nested state, each tensor in its saved shape."""
    tensors = dict(tensors)
    meta = json.loads(bytes(tensors.pop("__meta__").tolist()).decode("utf-8"))
    return unflatten_state(tensors, meta)
