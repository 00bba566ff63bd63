"""Story bundles: a saved story folder packed as one .zip that ``Load story`` brings back.

A saved story holds pickled tensors, and unpickling runs code, so the server only loads bundles it made
itself: each bundle carries an HMAC of its files under a key kept in the app's data folder (it survives
restarts, so a bundle downloaded yesterday still loads today). Archive members are checked before anything
is written, so a crafted zip cannot write outside its folder or unpack into something huge.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import zipfile
from pathlib import Path, PurePosixPath

logger = logging.getLogger(__name__)

SIGNATURE_NAME = "bundle.sig.json"
MAX_UNPACKED_BYTES = 2 * 1024**3
MAX_MEMBERS = 10_000


class BundleError(ValueError):
    """The file is not a story bundle this server can load; the message says why."""


def load_or_create_key(path: str | Path) -> bytes:
    """The signing key at ``path``, created (readable by this user only) the first time."""
    path = Path(path)
    if path.is_file():
        key = bytes.fromhex(path.read_text().strip())
        if len(key) >= 32:
            return key
        logger.warning("the bundle signing key at %s is too short; making a new one", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    return key


def _digest(key: bytes, files: dict[str, bytes]) -> str:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for name in sorted(files):
        mac.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return mac.hexdigest()


def pack(directory: str | Path, zip_path: str | Path, key: bytes) -> Path:
    """Zip every file of the saved story ``directory`` with a signature over them."""
    directory, zip_path = Path(directory), Path(zip_path)
    files = {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}
    files.pop(SIGNATURE_NAME, None)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(SIGNATURE_NAME, json.dumps({"format": 1, "hmac_sha256": _digest(key, files)}))
    return zip_path


def _member_name(info: zipfile.ZipInfo) -> str:
    name = PurePosixPath(info.filename)
    if name.is_absolute() or ".." in name.parts or "\\" in info.filename or not name.parts:
        raise BundleError(f"the bundle holds a file with an unsafe path ({info.filename!r})")
    return name.as_posix()


def unpack(zip_path: str | Path, directory: str | Path, key: bytes) -> Path:
    """Check and extract a bundle made by :func:`pack` into ``directory``; raises BundleError otherwise."""
    zip_path, directory = Path(zip_path), Path(directory)
    if not zipfile.is_zipfile(zip_path):
        raise BundleError("this file is not a story bundle (expected the .zip that 'Download story bundle' gives)")
    with zipfile.ZipFile(zip_path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_MEMBERS or sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
            raise BundleError("the bundle is larger than any story this app saves")
        names = {_member_name(i): i for i in infos}
        if SIGNATURE_NAME not in names:
            raise BundleError("the bundle has no signature; only bundles saved by this app can be loaded")
        try:
            signature = json.loads(archive.read(names.pop(SIGNATURE_NAME)))["hmac_sha256"]
        except (ValueError, KeyError, TypeError):
            raise BundleError("the bundle's signature file is damaged") from None
        files = {name: archive.read(info) for name, info in names.items()}
    if not hmac.compare_digest(str(signature), _digest(key, files)):
        raise BundleError(
            "the bundle was not saved by this server (or was changed since); "
            "for safety only this server's own bundles are loaded"
        )
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return directory
