"""Writing generated datasets safely: a manifest with checksums, written last, and an atomic rename.

A generated folder (Synthcity, a Cityscapes subset) is built in a hidden temporary sibling
and renamed into place only when complete, with ``manifest.json`` (kind, version, options,
file count, sha256 of every file) as its last file. So a crash never leaves a half-written
folder that looks complete, and a folder without a manifest is never taken for ours. Nor is
a file the manifest does not list: a folder holding one (a learner's notes, an extra city) is
never replaced, and of a replaced folder only the files its manifest lists are deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from pspnet_edu.files import (
    TEMP_SUFFIX,
    check_no_link_loop,
    check_writable,
    new_dir_mode,
    remove_stale_temporaries,
    sigterm_interrupts,
    temporary_prefix,
)

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
    """``out`` as a Path; a ValueError if it is empty or has no name of its own ('', '.', '/').

    A symbolic link loop is named as one (FileNotFoundError), not left to fail inside pathlib.
    """
    if not str(out).strip() or not Path(out).name or Path(out).name in (".", ".."):
        raise ValueError(f"output folder {str(out)!r} has no name; pass a folder such as data/synthcity")
    check_no_link_loop(out, "output folder")
    return Path(out)


def foreign_files(root: Path, manifest: dict) -> list[str]:
    """Paths under ``root`` (relative, sorted) that its manifest does not account for.

    A generated folder holds exactly the files its manifest lists, the manifest itself and
    the folders above those files. Anything else (a notes file, an extra city folder, even an
    empty one) was added by someone else, and so is a listed file whose content no longer has
    the checksum the manifest recorded (an edit). Missing files are not reported: an
    incomplete set holds nothing of the user's.
    """
    root = Path(root)
    listed = manifest.get("sha256") if isinstance(manifest.get("sha256"), dict) else {}
    ours = {MANIFEST_NAME, *listed}
    ours |= {parent.as_posix() for name in listed for parent in Path(name).parents if parent != Path(".")}
    found = []
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if name not in ours:
            found.append(name + ("/" if path.is_dir() and not path.is_symlink() else ""))
        elif name in listed and (not path.is_file() or path.is_symlink() or sha256_of(path) != listed[name]):
            found.append(name)
    # A foreign folder is reported once, not with every file inside it.
    folders = [name for name in found if name.endswith("/")]
    return [name for name in found if not any(name != f and name.startswith(f) for f in folders)]


def _examples(names: list[str]) -> str:
    shown = ", ".join(names[:2])
    return shown + (f" and {len(names) - 2} more" if len(names) > 2 else "")


def check_replaceable(out: Path, kind: str, why: str = "") -> None:
    """Raise unless ``out`` is absent, empty, or a ``kind`` folder holding only the files of its manifest.

    Run it before the expensive work: a folder that is not ours (FileExistsError) or that
    holds files its manifest does not list (user additions or edits, FileExistsError naming
    them) is never replaced. ``why`` (e.g. "its options differ") goes into the message.
    """
    out = check_output_name(out)
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink():
        raise FileExistsError(f"{out} is a symbolic link and was left untouched; pass the folder it points to "
                              f"({out.resolve()}) or another folder")
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is a file; pass a folder name that does not exist yet")
    if not any(out.iterdir()):
        return
    manifest = read_manifest(out)
    if manifest is None or manifest.get("kind") != kind:
        raise FileExistsError(
            f"{out} exists and is not a {kind} folder made by pspnet-edu (it has no {kind} {MANIFEST_NAME}); "
            "it was left untouched: delete it yourself or choose another output folder"
        )
    foreign = foreign_files(out, manifest)
    if foreign:
        because = f" ({why})" if why else ""
        raise FileExistsError(
            f"{out} would be regenerated{because} but holds files that are not part of its {kind} set "
            f"({_examples(foreign)}); it was left untouched: move those files out of {out}, "
            "or choose another folder"
        )


def _remove_own_files(folder: Path, manifest: dict | None) -> list[str]:
    """Delete the files ``manifest`` lists, the manifest, then every folder left empty (``folder`` too).

    Returns what is left (paths relative to ``folder``): never deleted, since we did not write it.
    """
    listed = manifest.get("sha256", {}) if manifest else {}
    for name in (*listed, MANIFEST_NAME):
        path = folder / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
    subfolders = [p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink()]
    for sub in sorted(subfolders, key=lambda p: len(p.parts), reverse=True) + [folder]:  # deepest first
        if not any(sub.iterdir()):
            sub.rmdir()
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def publish_atomically(build: Callable[[Path], None], out: Path, kind: str, why: str = "") -> Path:
    """Run ``build(tmp)`` in a temporary sibling of ``out``, then rename it to ``out``.

    An existing ``out`` is replaced only if it is empty or holds a manifest of the same
    ``kind`` (a folder this package generated) and nothing that manifest does not list
    (:func:`check_replaceable`, checked before the build and again just before the swap);
    anything else belongs to the user and is left untouched (FileExistsError). Of the old
    folder only the files its manifest lists are deleted. The new folder gets the permissions
    ``mkdir`` would give it (the umask), not the 0700 of a temporary folder, so that a set
    built on a shared machine is readable by the others. On any error, Ctrl-C or SIGTERM the
    temporary folder is removed and ``out`` is left as it was; one that a killed build
    (``kill -9``) left behind is removed by the next build of ``out``
    (:func:`pspnet_edu.files.remove_stale_temporaries`). ``why`` says, in an error, why
    ``out`` is rebuilt.
    """
    out = check_output_name(out)
    check_replaceable(out, kind, why)
    check_writable(out.parent, f"output {out}: its folder")  # fail before the expensive build
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # what a killed earlier build left behind
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(out), suffix=TEMP_SUFFIX, dir=out.parent))
    aside = None  # where the old folder waits while the new one is renamed into place
    try:
        with sigterm_interrupts():  # `kill` (SIGTERM) cleans up like Ctrl-C
            build(tmp)
        os.chmod(tmp, new_dir_mode())  # mkdtemp makes 0700 folders; a published one follows the umask
        check_replaceable(out, kind, why)  # again: the user may have added a file during the build
        manifest = read_manifest(out)
        if out.exists():  # move the old folder aside first: a directory rename cannot overwrite
            aside = Path(tempfile.mkdtemp(prefix=f".old-{out.name}-", dir=out.parent))
            os.replace(out, aside / out.name)
        os.replace(tmp, out)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None and (aside / out.name).exists() and not out.exists():
            os.replace(aside / out.name, out)  # put the old folder back
            aside.rmdir()
        if isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt(f"{error or 'interrupted'}: the unfinished {kind} set was removed and {out} was "
                                    "left as it was; run the command again") from None
        raise
    if aside is not None:
        left = _remove_own_files(aside / out.name, manifest)
        if left:  # written into the old folder in the instant between the check and the swap
            warnings.warn(f"{aside / out.name} keeps {_examples(left)}, which are not part of the "
                          f"{kind} set and were not deleted; move them where you want them", stacklevel=2)
        else:
            aside.rmdir()
    return out
