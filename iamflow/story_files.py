"""Story files: everything a story keeps on disk and reads back, and the format version of a saved story.

- ``StoryVideo``: the story's video as one H.264 segment a chunk (written beside the loop, on one thread of its
  own); the live player streams the segments, the story mp4 joins them without re-encoding.
- ``export``: the story mp4 and mapping.json beside it.
- ``save`` / ``load``: a folder that resumes the story identically (prompts, seeds, latents, the cache log,
  registry, memory archive), with its video segments and the model preset it needs; loading decodes nothing
  but what the decoder's causal state needs.

A saved story folder: ``story.pt`` (tensors and plain containers, read with ``weights_only``), ``mapping.json``,
``prompts.json``, ``preset.json``, ``video/chunk-NNNN.ts`` and, when the story was joined up to its last chunk,
``video/story.ts`` (that join: a loaded story shows its video without joining every segment again).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import shutil
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from iamflow.video import VideoError, concat, write_video

if TYPE_CHECKING:
    from iamflow.runtime import Runtime
    from iamflow.session import StorySession

logger = logging.getLogger(__name__)

# story.pt's format. 2: every tensor of the story is kept in one flat tensor per dtype (reading thousands of small
# tensors through the safe unpickler took most of a long story's load); 1 (tensors where they belong) still loads,
# and so does a folder without video/ (written before segments existed)
FORMAT = 2
READABLE_FORMATS = (1, 2)
_TENSOR = "__tensor__"  # a tensor's place in a format-2 story: (_TENSOR, its row in the tensor table)
STORY_NAME, PROMPTS_NAME, PRESET_NAME, MAPPING_NAME = "story.pt", "prompts.json", "preset.json", "mapping.json"
VIDEO_DIR = "video"
SEGMENT_NAME = re.compile(r"chunk-\d{4,7}\.ts")
JOINED_NAME = "story.ts"  # in VIDEO_DIR: the story's segments joined


class StoryVideo:
    """The story's video, one H.264 segment a chunk in ``directory`` (``chunk-0000.ts``, ...), display-scaled by
    ``scale``. Segments are encoded on a thread of their own, in order, while the next chunk is made."""

    def __init__(self, directory: str | Path, scale: int, fps: int):
        self.directory, self.scale, self.fps = Path(directory), scale, fps
        self.directory.mkdir(parents=True, exist_ok=True)
        self._writes: list[Future] = []  # one a chunk, in story order
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="segments")
        self._lock = threading.Lock()
        # the story joined so far (its first ``_joined_chunks`` segments): a turn appends its new segments to it
        # instead of joining every segment of the story again; the join before it is kept too, so undoing the last
        # turn's scene goes back to that one rather than joining the whole story again
        self._joined, self._joined_chunks = self.directory / "joined" / "story.ts", 0
        self._previous, self._previous_chunks = self.directory / "joined" / "before.ts", 0

    def __len__(self) -> int:
        return len(self._writes)

    def path(self, chunk: int) -> Path:
        return self.directory / f"chunk-{chunk:04d}.ts"

    def add(self, frames: np.ndarray) -> Future:
        """Queue the next chunk's frames ``uint8 [T, H, W, 3]``; the future gives the segment's path."""
        with self._lock:
            path = self.path(len(self._writes))
            future = self._encoder.submit(write_video, frames, path, self.fps, self.scale)
            self._writes.append(future)
        return future

    def write_of(self, chunk: int) -> Future:
        return self._writes[chunk]

    def adopt(self, paths: list[Path]) -> None:
        """Take segments already written (a loaded story's), as the first chunks, linked or copied in."""
        for source in paths:
            target = self.path(len(self._writes))
            _link_or_copy(source, target)
            done: Future = Future()
            done.set_result(target)
            self._writes.append(done)

    def adopt_join(self, path: Path) -> None:
        """Take a join of every segment adopted so far (a loaded story's), linked or copied in."""
        with self._lock:
            self._joined.parent.mkdir(exist_ok=True)
            _link_or_copy(path, self._joined)
            self._joined_chunks = len(self._writes)
            self._previous.unlink(missing_ok=True)
            self._previous_chunks = 0

    def complete_join(self) -> Path | None:
        """The kept join when it holds every segment (None otherwise: nothing is joined here)."""
        with self._lock:
            done = self._joined_chunks == len(self._writes) and self._joined_chunks and self._joined.is_file()
            return self._joined if done else None

    def segments(self) -> list[Path]:
        """Every segment, once written; a VideoError names the first that could not be."""
        paths = []
        for future in list(self._writes):
            try:
                paths.append(future.result())
            except VideoError:
                raise
            except Exception as err:  # (a disk error inside the writer)
                raise VideoError(f"a video segment could not be written ({err})") from None
        return paths

    def truncate(self, chunks: int) -> None:
        """Keep the first ``chunks`` segments (undo); the others' files go."""
        with self._lock:
            dropped, self._writes = self._writes[chunks:], self._writes[:chunks]
            if self._joined_chunks > chunks:  # the joined story holds chunks that are gone
                if self._previous_chunks and self._previous_chunks <= chunks and self._previous.is_file():
                    self._previous.replace(self._joined)  # the join before the undone turn's
                    self._joined_chunks = self._previous_chunks
                else:
                    self._joined.unlink(missing_ok=True)
                    self._joined_chunks = 0
                self._previous.unlink(missing_ok=True)
                self._previous_chunks = 0
        for index, future in enumerate(dropped, chunks):
            try:
                future.result()
            except Exception:
                pass  # a segment that failed is gone either way
            self.path(index).unlink(missing_ok=True)

    def join(self, path: str | Path) -> Path:
        """The story so far as one file (``.mp4`` or ``.ts``), joined without re-encoding. The story joined at the
        last call is kept, so a call joins it with the segments added since (two inputs and a copy of the bytes,
        not one input a chunk)."""
        segments = self.segments()
        if not segments:
            raise ValueError("the story is empty: add a scene first")
        with self._lock:
            joined, done = self._joined, self._joined_chunks if self._joined.is_file() else 0
            if done < len(segments):
                growing = joined.with_name("next.ts")
                concat(([joined] if done else []) + segments[done:], growing)
                if done:
                    joined.replace(self._previous)
                self._previous_chunks = done
                growing.replace(joined)
                self._joined_chunks = len(segments)
            return concat([joined], path)

    def close(self) -> None:
        self._encoder.shutdown(wait=True)


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)  # same file system: no bytes copied
    except OSError:
        shutil.copyfile(source, target)


# --- export ----------------------------------------------------------------------------------------------
def export(session: "StorySession", path: str | Path, scale: int | None = None) -> dict[str, Path]:
    """The story as an H.264 mp4 at the story's fps (its segments joined, not re-encoded, unless ``scale`` asks for
    another size than the segments'), and mapping.json beside it."""
    from iamflow.video import write_mp4

    session._settle()
    if not session.latents:
        raise ValueError("the story is empty: add a scene before exporting")
    path = Path(path)
    if scale is None or scale == session.video.scale:
        session.video.join(path)
    else:
        write_mp4(session.story_frames(), path, session.fps, scale=scale)
    mapping_path = path.with_name(MAPPING_NAME) if path.suffix else path / MAPPING_NAME
    write_mapping(session, mapping_path)
    return {"mp4": path, "mapping": mapping_path}


def write_mapping(session: "StorySession", path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(session.mapping(), indent=2, ensure_ascii=False))
    return path


# --- save / load -----------------------------------------------------------------------------------------
def save(session: "StorySession", directory: str | Path) -> Path:
    """Everything needed to resume the story identically, and its video segments (linked, not copied, where the
    file system allows)."""
    session._settle()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT,
        "preset": session.config.preset,
        "config": session.config.to_dict(),
        "settings": dataclasses.asdict(session.settings),
        "scenes": [dataclasses.asdict(s) for s in session.scenes],
        "latents": session.latents,
        "chunk_scene": session.chunk_scene,
        "chunk_frames": session.chunk_frame_counts,
        "chunk_queries": session.chunk_queries,
        "ops": session.ops,
        "joined_chunks": 0,
        "agent": session.agent.state_dict(),
        "bank": session.bank.state_dict(),
    }
    video = directory / VIDEO_DIR
    shutil.rmtree(video, ignore_errors=True)
    video.mkdir()
    segments = session.video.segments()
    for segment in segments:
        _link_or_copy(segment, video / segment.name)
    joined = session.video.complete_join()
    if joined is not None:  # (the app joins the story after every turn; a story never joined is saved without)
        _link_or_copy(joined, video / JOINED_NAME)
        state["joined_chunks"] = len(segments)
    torch.save(_pack_tensors(state), directory / STORY_NAME)
    write_mapping(session, directory / MAPPING_NAME)
    (directory / PROMPTS_NAME).write_text(
        json.dumps([{"prompt": s.prompt, "seed": s.seed, "seconds": s.seconds} for s in session.scenes], indent=2)
    )
    (directory / PRESET_NAME).write_text(json.dumps({"preset": session.config.preset}))
    return directory


def _pack_tensors(state: dict) -> dict:
    """``state`` with each tensor replaced by its place in one flat tensor per dtype (and a table of places)."""
    flats: dict[str, list[torch.Tensor]] = {}
    sizes: dict[str, int] = {}
    table: list[list[int]] = []
    dtypes: list[str] = []

    def walk(value):
        if isinstance(value, torch.Tensor):
            name = str(value.dtype).removeprefix("torch.")
            if name not in sizes:
                dtypes.append(name)
                flats[name], sizes[name] = [], 0
            if value.dim() > _MAX_DIMS:
                raise ValueError(f"a story tensor has {value.dim()} dimensions; at most {_MAX_DIMS} are kept")
            flat = value.detach().to("cpu").contiguous().reshape(-1)
            table.append([dtypes.index(name), sizes[name], value.dim(), *value.shape, *[0] * (_MAX_DIMS - value.dim())])
            flats[name].append(flat)
            sizes[name] += flat.numel()
            return (_TENSOR, len(table) - 1)
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, tuple):
            return tuple(walk(item) for item in value)
        return value

    packed = walk(state)
    packed["tensor_dtypes"] = dtypes
    packed["tensor_data"] = [torch.cat(flats[name]) for name in dtypes]
    packed["tensor_table"] = torch.tensor(table, dtype=torch.int64).reshape(len(table), 3 + _MAX_DIMS)
    return packed


_MAX_DIMS = 6


def _unpack_tensors(packed: dict) -> dict:
    """The state ``_pack_tensors`` was given (each tensor its own copy)."""
    data, table = packed.pop("tensor_data"), packed.pop("tensor_table").tolist()
    packed.pop("tensor_dtypes")

    def tensor(row: int) -> torch.Tensor:
        dtype, offset, dims, *shape = table[row]
        shape = shape[:dims]
        return data[dtype][offset: offset + math.prod(shape)].reshape(shape).clone()

    def walk(value):
        if isinstance(value, tuple):
            if len(value) == 2 and value[0] == _TENSOR:
                return tensor(value[1])
            return tuple(walk(item) for item in value)
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(packed)


def saved_preset(directory: str | Path) -> str | None:
    """The model preset a saved story folder names (None when it names none)."""
    marker = Path(directory) / PRESET_NAME
    if not marker.is_file():
        return None
    preset = json.loads(marker.read_text()).get("preset")
    if not isinstance(preset, str):
        raise ValueError(f"{PRESET_NAME} names no model preset")
    return preset


def load(directory: str | Path, runtime: "Runtime", video_dir: str | Path | None = None) -> "StorySession":
    """A saved story, ready to continue. Its video segments are linked into the new session's video folder
    (``video_dir``); only a folder saved without them has its video decoded again from the latents."""
    from iamflow.session import SceneRecord, StorySession, StorySettings

    directory = Path(directory)
    path = directory / STORY_NAME
    if not path.is_file():
        raise ValueError(f"{directory} is not a saved story (no {STORY_NAME} in it)")
    try:  # tensors and plain containers only: a story file cannot run code
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a story saved by this version ({type(err).__name__}: {str(err)[:200]})") from None
    if state.get("format") not in READABLE_FORMATS:
        raise ValueError(f"{path} has story format {state.get('format')}, this version reads "
                         f"{' and '.join(map(str, READABLE_FORMATS))}")
    if state["format"] == 2:
        state = _unpack_tensors(state)
    if state["preset"] != runtime.config.preset:
        raise ValueError(
            f"the story was made with model preset {state['preset']!r}; load it with that preset "
            f"(the running model is {runtime.config.preset!r})"
        )
    session = StorySession(runtime, StorySettings(**state["settings"]), video_dir=video_dir)
    session.scenes = [SceneRecord(**s) for s in state["scenes"]]
    session.latents = list(state["latents"])
    session.chunk_scene = list(state["chunk_scene"])
    session.chunk_queries = list(state["chunk_queries"])
    session.ops = list(state["ops"])
    session.agent.load_state_dict(state["agent"])
    session.bank.load_state_dict(state["bank"])
    if len(session.chunk_scene) != len(session.latents) or len(session.chunk_queries) != len(session.latents):
        raise ValueError(f"{path} does not fit together: {len(session.latents)} chunks of latents, "
                         f"{len(session.chunk_scene)} of scenes, {len(session.chunk_queries)} of memory queries")
    segments = [directory / VIDEO_DIR / session.video.path(g).name for g in range(len(session.latents))]
    if "chunk_frames" in state and all(p.is_file() for p in segments):
        session.chunk_frame_counts = [int(n) for n in state["chunk_frames"]]
        session.video.adopt(segments)
        joined = directory / VIDEO_DIR / JOINED_NAME
        if state.get("joined_chunks") == len(segments) and joined.is_file():
            session.video.adopt_join(joined)
    else:  # saved without its video: decoded once from the latents
        with runtime.lock:
            for frames in session.iter_story_frames():
                session.chunk_frame_counts.append(len(frames))
                session.video.add(frames)
    return session
