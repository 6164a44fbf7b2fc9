"""Obtain missing raw datasets before a workflow run: Debian's package where apt works, else a download.

Used by ``make run`` through the workflow's ``fetch_data`` rule (``python -m permlmc fetch-data --names ...
--root ...``, the datasets its config names); the workflow's other jobs only read files (or download when the
config sets ``data.download: true``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence

from permlmc.data.readers import DatasetNotFoundError, parse_dataset_id, read_raw
from permlmc.types import PathLike

log = logging.getLogger("permlmc.data.fetch")

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


def ensure_raw(name: str, root: PathLike) -> str:
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


def fetch_datasets(names: Sequence[str], root: PathLike) -> dict[str, str]:
    """``ensure_raw`` for every dataset of ``names`` (label-noise variants such as ``fashion_mnist-noise20``
    share their base dataset's files): base name -> how its files were found."""
    bases = dict.fromkeys(parse_dataset_id(name)[0] for name in names)
    return {name: ensure_raw(name, root) for name in bases}
