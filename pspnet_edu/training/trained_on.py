"""Which data a checkpoint was trained on, named by what it is rather than by where it was.

A run's ``TrainConfig.data`` is a folder of the machine that trained it: a temporary folder,
somebody's home, or a relative path that means another folder elsewhere. So a file that
travels (a committed course checkpoint, its sidecar, a results file) describes its data by
its *source* instead: for Synthcity the manifest's kind, generator version and options (the
set is drawn from them, byte for byte), for any other folder its name and fingerprint
(:func:`pspnet_edu.data.dataset_fingerprint`).

:func:`training_data` finds that data again on another machine: the default Synthcity
(generated if absent) when the source is the default set; the folder the run was trained on
when it is still there and still holds the same data; otherwise a one-line error that says
which ``--data`` to pass. It never scores whatever folder happens to have the old name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pspnet_edu.data import dataset_fingerprint, ensure_synthetic
from pspnet_edu.data.manifest import read_manifest
from pspnet_edu.data.synthetic import SYNTHCITY_VERSION, SynthcityOptions, options_json
from pspnet_edu.provenance import portable_path


def data_source(root: str | Path) -> dict[str, Any]:
    """What the data in ``root`` is: ``{"kind": "synthcity", "version", "options"}`` or ``{"kind": "folder", ...}``."""
    root = Path(root)
    manifest = read_manifest(root) or {}
    if manifest.get("kind") == "synthcity" and isinstance(manifest.get("options"), dict):
        return {"kind": "synthcity", "version": manifest.get("version"), "options": manifest["options"]}
    return {"kind": "folder", "name": root.name, "fingerprint": dataset_fingerprint(root)}


def describe_source(source: dict[str, Any]) -> str:
    """'Synthcity v4 (seed 0, 300 train + 60 val, 128x256)', or 'folder cityscapes_subset (files:1a2b...)'.

    >>> describe_source({"kind": "synthcity", "version": 4,
    ...                  "options": {"seed": 0, "train": 300, "val": 60, "size": [128, 256]}})
    'Synthcity v4 (seed 0, 300 train + 60 val, 128x256)'
    """
    if source.get("kind") == "synthcity":
        options = source.get("options") or {}
        if {"seed", "train", "val", "size"} <= set(options):
            height, width = options["size"]
            return (f"Synthcity v{source.get('version')} (seed {options['seed']}, {options['train']} train + "
                    f"{options['val']} val, {height}x{width})")
        return f"Synthcity v{source.get('version')} ({options})"
    return f"folder {source.get('name')} ({source.get('fingerprint')})"


def portable_config(config: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """A config dict fit to commit: its data folder replaced by :func:`describe_source`, its run folder (if
    any) made relative or shortened by :func:`~pspnet_edu.provenance.portable_path` (no machine's path)."""
    portable = {**config, "data": describe_source(source)}
    if isinstance(config.get("out"), str):
        portable["out"] = portable_path(config["out"])
    return portable


def _synthcity_command(options: dict[str, Any]) -> str:
    height, width = options.get("size", (128, 256))
    return (f"pspnet-edu data synthetic --train {options.get('train')} --val {options.get('val')} "
            f"--size {height}x{width} --seed {options.get('seed')} --out DIR")


def _synthcity_for(source: dict[str, Any], where: str) -> Path:
    """The default Synthcity folder (generated if absent) when ``source`` is that set; else a clear error."""
    if source.get("version") != SYNTHCITY_VERSION:
        raise ValueError(f"{where} was trained on Synthcity version {source.get('version')}, and this release draws "
                         f"version {SYNTHCITY_VERSION}: its scenes differ; evaluate it with the release that made it, "
                         "or pass --data FOLDER to score it on other data anyway")
    options = source.get("options") or {}
    if options != options_json(SynthcityOptions()):
        raise ValueError(f"{where} was trained on {describe_source(source)}, not the default set; generate that set "
                         f"with `{_synthcity_command(options)}` and pass --data DIR")
    return ensure_synthetic()


def training_data(checkpoint: dict[str, Any], where: str) -> Path:
    """The folder holding the data ``checkpoint`` was trained on, on this machine (see the module docstring)."""
    source = checkpoint.get("data_source")
    if isinstance(source, dict) and source.get("kind") == "synthcity":
        return _synthcity_for(source, where)
    folder = (checkpoint.get("config") or {}).get("data")
    if not folder:
        raise ValueError(f"{where} does not say which data it was trained on; pass --data FOLDER")
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{where} was trained on the data in {folder}, which is not on this machine; "
                                "pass --data FOLDER (a dataset in the Cityscapes layout)")
    saved_id = checkpoint.get("data_id")
    if saved_id is not None and dataset_fingerprint(root) != saved_id:
        raise ValueError(f"{folder} now holds other data than {where} was trained on (its fingerprint differs); "
                         "pass --data FOLDER to say which data to score")
    return root


def other_data_note(checkpoint: dict[str, Any], root: str | Path, where: str) -> str | None:
    """A sentence if ``root`` is not the data ``checkpoint`` was trained on (scoring it may still be intended)."""
    source = checkpoint.get("data_source")
    if isinstance(source, dict) and source.get("kind") == "synthcity":
        here = data_source(root)
        if here.get("kind") == "synthcity" and {k: here.get(k) for k in ("version", "options")} == \
                {k: source.get(k) for k in ("version", "options")}:
            return None
        return f"note: {root} is not the data {where} was trained on ({describe_source(source)})"
    saved_id = checkpoint.get("data_id")
    if saved_id is None or dataset_fingerprint(root) == saved_id:
        return None
    return f"note: {root} is not the data {where} was trained on ({(checkpoint.get('config') or {}).get('data')})"


def moved_data(checkpoint: dict[str, Any], root: str | Path, where: str) -> Path:
    """``root``, a folder said to hold the data ``checkpoint`` was trained on (moved since), once checked it does."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--data {root}: no such folder")
    if other_data_note(checkpoint, root, where) is not None:
        raise ValueError(f"{root} holds other data than {where} was trained on (another fingerprint or Synthcity); "
                         "pass the folder of its own training data")
    return root
