"""Obtain missing raw datasets before a workflow run: Debian's package where apt works, else a download.

Used by ``make run`` (``python -m lmc fetch-data --config config.yaml``); the workflow itself only reads
files (or downloads when the config sets ``data.download: true``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from lmc.data.readers import DatasetNotFoundError, parse_dataset_id, read_raw

log = logging.getLogger("lmc.data.fetch")

DEBIAN_PACKAGES = {"fashion_mnist": "dataset-fashion-mnist"}


def _apt_install(package: str) -> bool:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return False
    log.info("installing Debian package %s", package)
    install = ["apt-get", "install", "-y", "-q", package]
    if subprocess.run(install, capture_output=True).returncode == 0:
        return True
    subprocess.run(["apt-get", "update", "-q"], capture_output=True)  # stale package lists on a fresh machine
    return subprocess.run(install, capture_output=True).returncode == 0


def ensure_raw(name: str, root: str | Path) -> str:
    """Make the raw files of ``name`` readable; return how they were found (``present``, ``apt``, ``download``)."""
    try:
        read_raw(name, root)
        return "present"
    except DatasetNotFoundError as missing:
        package = DEBIAN_PACKAGES.get(name)
        if package and _apt_install(package):
            read_raw(name, root)
            return "apt"
        try:
            read_raw(name, root, download=True)
        except Exception as exc:  # torchvision raises assorted network errors
            raise DatasetNotFoundError(f"{missing}\n(download attempt failed: {exc})") from exc
        return "download"


def fetch_for_config(config_path: str | Path) -> dict[str, str]:
    """``ensure_raw`` for every dataset a workflow config names (top level and per study; label-noise variants
    share their base dataset's files)."""
    config = yaml.safe_load(Path(config_path).read_text()) or {}
    root = (config.get("data") or {}).get("root", "resources/raw")
    named = list(config.get("datasets", []))
    for study in (config.get("studies") or {}).values():
        named.extend(study.get("datasets") or [])
    named.append((config.get("all_pairs") or {}).get("dataset"))
    for section in ("groups", "ensembles"):
        named.extend(entry.get("dataset") for entry in (config.get(section) or {}).get("networks", []))
    named = [name for name in named if name]
    bases = dict.fromkeys(parse_dataset_id(name)[0] for name in named)
    return {name: ensure_raw(name, root) for name in bases}
