"""Writing generated datasets safely: a manifest with checksums, written last, and an atomic rename.

A generated folder (Synthcity, a Cityscapes subset) is built in a hidden temporary sibling
and renamed into place only when complete, with ``manifest.json`` (kind, version, options,
file count, sha256 of every file) as its last file. So a crash never leaves a half-written
folder that looks complete, and a folder without a manifest is never taken for ours.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image

MANIFEST_NAME = "manifest.json"
PNG_COMPRESS_LEVEL = 6  # fixed, so that the same arrays give byte-identical files everywhere


def save_png(array: np.ndarray | Image.Image, path: Path) -> None:
    """Write a PNG with a fixed compression level (no timestamps: byte-identical output)."""
    image = array if isinstance(array, Image.Image) else Image.fromarray(array)
    image.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_manifest(out: Path, kind: str, version: int, options: dict, files: Iterable[str],
                   extra: dict | None = None) -> None:
    """Write ``out/manifest.json`` listing ``files`` (paths relative to ``out``) with their sha256."""
    names = sorted(files)
    manifest = {"kind": kind, "version": version, "options": options, **(extra or {}),
                "file_count": len(names), "sha256": {name: sha256_of(out / name) for name in names}}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def read_manifest(root: Path) -> dict | None:
    """The manifest of a generated folder, or None if there is none or it cannot be read."""
    try:
        manifest = json.loads((Path(root) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_files_present(root: Path, manifest: dict) -> bool:
    """True if every file the manifest lists exists (a cheap completeness check, no hashing)."""
    names = manifest.get("sha256", {})
    return len(names) == manifest.get("file_count") and all((Path(root) / name).is_file() for name in names)


def check_output_name(out: str | Path) -> Path:
    """``out`` as a Path; a ValueError if it is empty or has no name of its own ('', '.', '/')."""
    if not str(out).strip() or not Path(out).name or Path(out).name in (".", ".."):
        raise ValueError(f"output folder {str(out)!r} has no name; pass a folder such as data/synthcity")
    return Path(out)


def publish_atomically(build: Callable[[Path], None], out: Path, kind: str) -> Path:
    """Run ``build(tmp)`` in a temporary sibling of ``out``, then rename it to ``out``.

    An existing ``out`` is replaced only if it is empty or holds a manifest of the same
    ``kind`` (a folder this package generated); anything else belongs to the user and is left
    untouched (FileExistsError). On any error the temporary folder is removed.
    """
    out = check_output_name(out)
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out} exists and is a file; pass a folder name that does not exist yet")
        manifest = read_manifest(out)
        if any(out.iterdir()) and (manifest is None or manifest.get("kind") != kind):
            raise FileExistsError(
                f"{out} exists and is not a {kind} folder made by pspnet-edu (it has no {kind} {MANIFEST_NAME}); "
                "it was left untouched: delete it yourself or choose another output folder"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        build(tmp)
        old = None
        if out.exists():  # move the old folder aside first: a directory rename cannot overwrite
            old = Path(tempfile.mkdtemp(prefix=f".old-{out.name}-", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
