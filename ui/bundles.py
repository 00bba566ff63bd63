"""Story bundles: a saved story folder packed as one .zip that ``Load story`` brings back.

A saved story holds pickled tensors, and unpickling runs code, so the server only loads bundles it made
itself: each bundle carries an HMAC of its files under a key kept in the app's data folder (it survives
restarts, so a bundle downloaded yesterday still loads today).

Nothing in an upload is trusted before its signature is checked, and checking it costs little: members are
read as streams (never whole into memory), only the names a saved story has are accepted, and the sizes are
bounded before anything is inflated: by how much a story file can compress, and by what a story of the scenes
the bundle lists can hold (``story_size_bound``). Messages name the problem, never a server path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from iamflow.config import ConfigError
from iamflow.files import write_atomic
from iamflow.story_files import (CHUNKS_DIR, JOINED_NAME, MAPPING_NAME, MEMORY_DIR, PRESET_NAME, PROMPTS_NAME,
                                 SEGMENT_NAME, STORY_NAME, VIDEO_DIR)
from iamflow.video import display_scale

logger = logging.getLogger(__name__)

SIGNATURE_NAME = "bundle.sig.json"
MEMBERS = (STORY_NAME, MAPPING_NAME, PROMPTS_NAME, PRESET_NAME, SIGNATURE_NAME)  # what ``pack`` of a saved story holds
# ... and its video: the segments VIDEO_DIR/chunk-NNNN.ts and their join VIDEO_DIR/story.ts; its chunks' tensors
# CHUNKS_DIR/latent-NNNN.bin and CHUNKS_DIR/queries-NNNN.bin; its archived frames
# MEMORY_DIR/p{scene}_c{chunk}_f{frame}.pt
CHUNK_FILE = re.compile(r"(latent|queries)-\d{4,7}\.bin")
MEMORY_FILE = re.compile(r"p\d{1,6}_c\d{1,7}_f-?\d{1,9}\.pt")
SMALL_MEMBER_BYTES = {SIGNATURE_NAME: 4096, PRESET_NAME: 4096, PROMPTS_NAME: 16 * 2**20}
# a ceiling for any bundle (a story's own bound, ``story_size_bound``, is the real one: a 30-minute Wan story's
# files take about 7 GiB, 3.2 MB a chunk); what a bundle unpacks to must also fit the server's free disk, with
# room to spare
MAX_UNPACKED_BYTES = 256 * 1024**3
DISK_MARGIN_BYTES = 1024**3
# A saved story compresses about 1.2:1 (tensors) and up to 10:1 (JSON); far more means padding, not a story.
MAX_COMPRESSION_RATIO = 100
BLOCK_BYTES = 2**20
DAMAGED = "this story file is damaged"


class BundleError(ValueError):
    """The file is not a story bundle this server can load; the message says why."""


class KeyFileError(ConfigError):
    """The signing key file cannot be used; the message says which file and what to do."""


def load_or_create_key(path: str | Path) -> bytes:
    """The signing key at ``path``, created (readable by this user only, written atomically) the first time."""
    path = Path(path)
    if path.exists():
        try:
            key = bytes.fromhex(path.read_text().strip())
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise KeyFileError(
                f"the bundle signing key {path} is damaged ({type(err).__name__}); delete it to make a new one "
                "(story bundles saved under the old key will no longer load)"
            ) from None
        if len(key) >= 32:
            return key
        raise KeyFileError(
            f"the bundle signing key {path} is too short ({len(key)} bytes, at least 32 are needed); delete it to "
            "make a new one (story bundles saved under the old key will no longer load)"
        )
    key = secrets.token_bytes(32)
    write_atomic(path, key.hex(), sync=True)  # readable by this user only; a crash never leaves half a key
    return key


def story_size_bound(config: Any, scene_seconds: list[float]) -> int:
    """The most bytes a saved story of scenes this long can unpack to, under ``config`` (a generous bound: twice
    what its latents, memory queries, archived frames, log and video segments take (a segment at most the raw
    bytes of its display-size frames), plus room for prompts and the registry)."""
    video, cache, model = config.video, config.cache, config.model
    frames_per_chunk = cache.frames_per_chunk
    video_frames_per_chunk = frames_per_chunk * video.temporal_compression
    chunks = sum(max(1, math.ceil(float(s) * video.fps / video_frames_per_chunk)) for s in scene_seconds)
    latent_frame = 4 * model.in_channels * video.latent_height * video.latent_width  # float32
    query_frame = 4 * max(1, len(config.memory.score_layers)) * model.num_heads * model.head_dim
    thumbnail = 3 * video.height * video.width
    segment = video_frames_per_chunk * thumbnail * display_scale(video.height, video.width) ** 2 + 65536
    per_chunk = (frames_per_chunk * (latent_frame + query_frame) + latent_frame + query_frame + thumbnail + segment
                 + 4096)
    per_scene = 64 * 1024
    return 2 * (2**20 + chunks * per_chunk + len(scene_seconds) * per_scene)


def check_room(directory: Path, needed: int) -> None:
    """Refuse, before writing anything, a story that would not fit the disk of ``directory`` (with a margin)."""
    free = shutil.disk_usage(directory).free
    if needed + DISK_MARGIN_BYTES > free:
        raise BundleError(f"this story needs {needed / 1024**3:.1f} GiB of disk to load and the server has "
                          f"{free / 1024**3:.1f} GiB free (1 GiB is kept spare): free some space on the server, "
                          f"or load a shorter story")


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            digest.update(block)
    return digest.digest()


def _digest(key: bytes, file_digests: dict[str, bytes]) -> str:
    """HMAC over the sorted names and the SHA-256 of each file."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for name in sorted(file_digests):
        mac.update(name.encode() + b"\0" + file_digests[name])
    return mac.hexdigest()


def pack(directory: str | Path, zip_path: str | Path, key: bytes) -> Path:
    """Zip every file of the saved story ``directory`` with a signature over them."""
    directory, zip_path = Path(directory), Path(zip_path)
    files = {p.relative_to(directory).as_posix(): p for p in sorted(directory.rglob("*")) if p.is_file()}
    files.pop(SIGNATURE_NAME, None)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in files.items():  # the video and the tensors hardly deflate (1.2:1): stored as they are
            stored = name.endswith((".ts", ".pt", ".bin"))
            archive.write(path, name, compress_type=zipfile.ZIP_STORED if stored else None)
        signature = _digest(key, {name: _file_digest(path) for name, path in files.items()})
        archive.writestr(SIGNATURE_NAME, json.dumps({"format": 1, "hmac_sha256": signature}))
    return zip_path


def _member_name(info: zipfile.ZipInfo) -> str:
    name = PurePosixPath(info.filename)
    if name.is_absolute() or ".." in name.parts or "\\" in info.filename or not name.parts:
        raise BundleError(f"the bundle holds a file with an unsafe path ({info.filename!r})")
    return name.as_posix()


def _is_story_file(name: str) -> bool:
    """A member of one of a saved story's folders: its video, its chunks' tensors, its archived frames."""
    folder, _, base = name.partition("/")
    if folder == VIDEO_DIR:
        return SEGMENT_NAME.fullmatch(base) is not None or base == JOINED_NAME
    if folder == CHUNKS_DIR:
        return CHUNK_FILE.fullmatch(base) is not None
    return folder == MEMORY_DIR and MEMORY_FILE.fullmatch(base) is not None


def _read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> Any:
    """A JSON member, read only up to its size limit."""
    limit = SMALL_MEMBER_BYTES[name]
    if info.file_size > limit:
        raise BundleError(f"{DAMAGED}: {name} is larger than any story writes ({info.file_size} bytes)")
    with archive.open(info) as handle:
        data = handle.read(limit + 1)
    try:
        return json.loads(data)
    except ValueError:
        raise BundleError(f"{DAMAGED}: {name} is not valid JSON") from None


def _scene_seconds(prompts: Any) -> list[float]:
    if not isinstance(prompts, list) or not all(isinstance(p, dict) for p in prompts):
        raise BundleError(f"{DAMAGED}: {PROMPTS_NAME} is not a list of scenes")
    seconds = []
    for number, scene in enumerate(prompts, 1):
        value = scene.get("seconds")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
            raise BundleError(f"{DAMAGED}: scene {number} in {PROMPTS_NAME} has no valid length in seconds")
        seconds.append(float(value))
    return seconds


def unpack(zip_path: str | Path, directory: str | Path, key: bytes,
           size_bound: Callable[[str | None, list[float]], int] | None = None) -> Path:
    """Check and extract a bundle made by :func:`pack` into ``directory``; raises BundleError otherwise.

    ``size_bound(preset, scene_seconds)`` gives the most bytes the story the bundle lists can unpack to; members
    are streamed into ``directory`` while they are hashed, and nothing stays there unless the signature holds.
    """
    zip_path, directory = Path(zip_path), Path(directory)
    if not zipfile.is_zipfile(zip_path):
        raise BundleError("this file is not a story bundle (expected the .zip that 'Download story bundle' gives)")
    try:
        with zipfile.ZipFile(zip_path) as archive:
            return _unpack(archive, directory, key, size_bound)
    except BundleError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as err:
        shutil.rmtree(directory, ignore_errors=True)
        raise BundleError(f"{DAMAGED}: {err}") from None


def _unpack(archive: zipfile.ZipFile, directory: Path, key: bytes, size_bound) -> Path:
    infos = [i for i in archive.infolist() if not i.is_dir()]
    names: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = _member_name(info)
        if name not in MEMBERS and not _is_story_file(name):
            raise BundleError(f"{DAMAGED}: it holds a file no saved story has ({name!r})")
        if name in names:
            raise BundleError(f"{DAMAGED}: it holds {name!r} twice")
        if info.file_size > MAX_COMPRESSION_RATIO * info.compress_size + 65536:
            raise BundleError(f"{DAMAGED}: {name} unpacks to {info.file_size} bytes from {info.compress_size}, "
                              "far more than a story file compresses")
        names[name] = info
    if SIGNATURE_NAME not in names:
        raise BundleError("the bundle has no signature; only bundles saved by this app can be loaded")
    if STORY_NAME not in names or PROMPTS_NAME not in names:
        raise BundleError(f"{DAMAGED}: it holds no saved story ({STORY_NAME} and {PROMPTS_NAME})")
    signature = _read_small(archive, names.pop(SIGNATURE_NAME), SIGNATURE_NAME)
    if not isinstance(signature, dict) or not isinstance(signature.get("hmac_sha256"), str):
        raise BundleError("the bundle's signature file is damaged")
    preset = _read_small(archive, names[PRESET_NAME], PRESET_NAME).get("preset") if PRESET_NAME in names else None
    if preset is not None and not isinstance(preset, str):
        raise BundleError(f"{DAMAGED}: {PRESET_NAME} names no model preset")
    seconds = _scene_seconds(_read_small(archive, names[PROMPTS_NAME], PROMPTS_NAME))
    total = sum(i.file_size for i in names.values())
    bound = min(MAX_UNPACKED_BYTES, size_bound(preset, seconds)) if size_bound else MAX_UNPACKED_BYTES
    if total > bound:
        raise BundleError(f"{DAMAGED}: it unpacks to {total} bytes, more than a story of {len(seconds)} scene(s) "
                          f"can hold ({bound})")

    directory.mkdir(parents=True, exist_ok=True)
    check_room(directory, total)
    digests = {}
    for name, info in names.items():
        target = directory / name
        target.parent.mkdir(exist_ok=True)
        digest, written = hashlib.sha256(), 0
        with archive.open(info) as source, target.open("wb") as sink:
            for block in iter(lambda: source.read(BLOCK_BYTES), b""):
                written += len(block)
                if written > info.file_size:  # (zipfile stops at the stated size; this keeps the bound ours)
                    raise BundleError(f"{DAMAGED}: {name} is longer than it says")
                digest.update(block)
                sink.write(block)
        digests[name] = digest.digest()
    if not hmac.compare_digest(signature["hmac_sha256"], _digest(key, digests)):
        raise BundleError(
            "the bundle was not saved by this server (or was changed since); "
            "for safety only this server's own bundles are loaded"
        )
    return directory
