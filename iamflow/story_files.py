"""Story files: everything a story keeps on disk and reads back, and the format version of a saved story.

- ``StoryVideo``: the story's video as one H.264 segment a chunk (written beside the loop, on one thread of its
  own); the live player streams the segments, the story mp4 joins them without re-encoding.
- ``export``: the story mp4 and mapping.json beside it.
- ``save`` / ``load``: a folder that resumes the story identically (prompts, seeds, latents, the cache log,
  registry, memory archive), with its video segments and the model preset it needs; loading decodes nothing
  but what the decoder's causal state needs.

A saved story folder: ``story.pt`` (tensors and plain containers, read with ``weights_only``), ``mapping.json``,
``prompts.json``, ``preset.json``, ``video/chunk-NNNN.ts`` and, when the story was joined up to its last chunk,
``video/story.ts`` (that join: a loaded story shows its video without joining every segment again),
``chunks/latent-NNNN.bin`` and ``chunks/queries-NNNN.bin`` (each chunk's latents and memory queries, raw bytes;
their shapes are in story.pt) and ``memory/p{scene}_c{chunk}_f{frame}.pt`` (an archived memory frame's latent and
picture). A session keeps the same files in its own folder as the story grows (``ChunkTensors``, the memory bank's
aside folder); saving links them, loading links them back and reads only the story's last chunks.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from iamflow.files import link_or_copy
from iamflow.video import VideoError, concat, write_video

if TYPE_CHECKING:
    from iamflow.runtime import Runtime
    from iamflow.session import StorySession

logger = logging.getLogger(__name__)

# story.pt's format. 3: the chunks' latents and queries and the archive's latents and pictures are files beside it
# (chunks/, memory/), not in it: a long story's save and load no longer write and read gigabytes. 2: every tensor of
# the story is kept in one flat tensor per dtype (reading thousands of small tensors through the safe unpickler took
# most of a long story's load); 2 and 1 (tensors where they belong) still load, and so does a folder without video/
# (written before segments existed)
FORMAT = 3
READABLE_FORMATS = (1, 2, 3)
_TENSOR = "__tensor__"  # a tensor's place in a format-2 story: (_TENSOR, its row in the tensor table)
STORY_NAME, PROMPTS_NAME, PRESET_NAME, MAPPING_NAME = "story.pt", "prompts.json", "preset.json", "mapping.json"
VIDEO_DIR, CHUNKS_DIR, MEMORY_DIR = "video", "chunks", "memory"
_CHUNK_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
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
            future = self._encoder.submit(_write_segment, frames, path, self.fps, self.scale)
            self._writes.append(future)
        return future

    def write_of(self, chunk: int) -> Future:
        return self._writes[chunk]

    def adopt(self, paths: list[Path]) -> None:
        """Take segments already written (a loaded story's), as the first chunks, linked or copied in."""
        for source in paths:
            target = self.path(len(self._writes))
            link_or_copy(source, target)
            done: Future = Future()
            done.set_result(target)
            self._writes.append(done)

    def adopt_join(self, path: Path) -> None:
        """Take a join of every segment adopted so far (a loaded story's), linked or copied in."""
        with self._lock:
            self._joined.parent.mkdir(exist_ok=True)
            link_or_copy(path, self._joined)
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


def _write_segment(frames: np.ndarray, path: Path, fps: int, scale: int) -> Path:
    """``write_video`` for the segment writer: a failure comes back as a ``VideoError`` whose traceback holds no
    frames (a failed segment's future is kept with the story; the error's traceback would keep the chunk's frames,
    and every later chunk's, for as long as the story lives)."""
    try:
        return write_video(frames, path, fps, scale)
    except VideoError as err:
        error = VideoError(str(err))
    except Exception as err:  # (ffmpeg missing from the path, a disk error)
        error = VideoError(f"a video segment could not be written ({type(err).__name__}: {err})")
    del frames
    raise error


class ChunkTensors:
    """One tensor a chunk of the story (its latents, or its memory queries), kept on disk: each is written once, as
    it reaches the host, to a file of its own (``{stem}-NNNN.bin``, raw bytes; shapes and dtypes are kept here),
    and only the last ``in_ram`` chunks stay in RAM as well. A story's host memory then does not grow with its
    length; an older chunk (the sink at a re-cache, the decoder's reach at undo and load, an export) is read back
    from its file, which the page cache usually still holds.

    Reads like a list (``len``, ``[g]``, ``[a:b]``, iteration); ``append`` takes a chunk whose copy may still be on
    its way to the host (kept as given, not written), ``settle`` its finished copy (written, then dropped from RAM
    once it is old), ``del store[k:]`` forgets the chunks from ``k`` on (their files too)."""

    def __init__(self, directory: str | Path, stem: str, in_ram: int):
        self.directory, self.stem, self.in_ram = Path(directory), stem, max(1, in_ram)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._shapes: list[tuple[int, ...]] = []
        self._dtypes: list[torch.dtype] = []
        self._written: list[bool] = []
        self._ram: dict[int, torch.Tensor] = {}

    def path(self, chunk: int) -> Path:
        return self.directory / f"{self.stem}-{chunk:04d}.bin"

    def __len__(self) -> int:
        return len(self._shapes)

    def __getitem__(self, index: int | slice) -> torch.Tensor | list[torch.Tensor]:
        if isinstance(index, slice):
            return [self._read(g) for g in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"chunk {index} of a story of {len(self)} chunks")
        return self._read(index)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self._read(g) for g in range(len(self)))

    def _read(self, g: int) -> torch.Tensor:
        kept = self._ram.get(g)
        if kept is not None:
            return kept
        dtype, shape = self._dtypes[g], self._shapes[g]
        data = bytearray(self.path(g).read_bytes())
        expected = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
        if len(data) != expected:
            raise ValueError(f"{self.path(g)} holds {len(data)} bytes, the chunk has {expected}: the story's files "
                             "are damaged")
        return torch.frombuffer(data, dtype=dtype).reshape(shape)

    def append(self, tensor: torch.Tensor) -> None:
        self._shapes.append(tuple(tensor.shape))
        self._dtypes.append(tensor.dtype)
        self._written.append(False)
        self._ram[len(self._shapes) - 1] = tensor

    def settle(self, g: int, tensor: torch.Tensor) -> None:
        """Chunk ``g``'s finished host copy (CPU, contiguous): written to its file; kept in RAM while recent."""
        if tuple(tensor.shape) != self._shapes[g] or tensor.dtype != self._dtypes[g]:
            raise ValueError(f"chunk {g} settles as {tuple(tensor.shape)} {tensor.dtype}, it was "
                             f"{self._shapes[g]} {self._dtypes[g]}")
        self._write(g, tensor)
        self._ram[g] = tensor
        self._forget_old()

    def _write(self, g: int, tensor: torch.Tensor) -> None:
        path = self.path(g)
        path.unlink(missing_ok=True)  # (never write through a link: a saved story may share the old file)
        with path.open("wb") as handle:
            tensor.detach().contiguous().view(torch.uint8).numpy().tofile(handle)
        self._written[g] = True

    def _forget_old(self) -> None:
        oldest_kept = len(self) - self.in_ram
        for g in [k for k in self._ram if k < oldest_kept and self._written[k]]:
            del self._ram[g]

    def extend_settled(self, tensors) -> None:
        """Chunks already on the host (a story saved in an earlier format)."""
        for tensor in tensors:
            self.append(tensor)
            self.settle(len(self) - 1, tensor)

    def adopt(self, files: list[Path], shapes: list, dtype: torch.dtype) -> None:
        """Chunks already written (a saved story's files), linked or copied in as the next chunks; the last
        ``in_ram`` are read into RAM."""
        for source, shape in zip(files, shapes, strict=True):
            g = len(self)
            link_or_copy(source, self.path(g))
            self._shapes.append(tuple(int(n) for n in shape))
            self._dtypes.append(dtype)
            self._written.append(True)
        for g in range(max(0, len(self) - self.in_ram), len(self)):
            self._ram[g] = self._read(g)

    def files(self) -> list[Path]:
        """Every chunk's file (each chunk must have settled)."""
        unwritten = [g for g, done in enumerate(self._written) if not done]
        if unwritten:
            raise RuntimeError(f"chunks {unwritten} of {self.stem} have not reached the host yet")
        return [self.path(g) for g in range(len(self))]

    def layout(self) -> dict:
        """The chunks' shapes and their dtype (a saved story's record of its files)."""
        dtypes = set(self._dtypes)
        if len(dtypes) > 1:
            raise ValueError(f"the chunks of {self.stem} have {len(dtypes)} dtypes; a story keeps one")
        dtype = dtypes.pop() if dtypes else torch.float32
        return {"shapes": [list(shape) for shape in self._shapes], "dtype": str(dtype).removeprefix("torch.")}

    def held_bytes(self) -> int:
        """Bytes of the chunks kept in RAM."""
        return sum(t.numel() * t.element_size() for t in self._ram.values())

    def __delitem__(self, index: slice) -> None:
        start, stop, step = index.indices(len(self))
        if stop != len(self) or step != 1:
            raise ValueError("only the story's last chunks can be forgotten (store[k:])")
        for g in range(start, len(self)):
            self._ram.pop(g, None)
            self.path(g).unlink(missing_ok=True)
        del self._shapes[start:], self._dtypes[start:], self._written[start:]


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
    directory = Path(directory)
    _check_save_folder(session, directory)
    session._settle()
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT,
        "preset": session.config.preset,
        "config": session.config.to_dict(),
        "settings": dataclasses.asdict(session.settings),
        "scenes": [dataclasses.asdict(s) for s in session.scenes],
        "chunk_files": {"latent": session.latents.layout(), "queries": session.chunk_queries.layout()},
        "chunk_scene": session.chunk_scene,
        "chunk_frames": session.chunk_frame_counts,
        "ops": session.ops,
        "joined_chunks": 0,
        "agent": session.agent.state_dict(),
        "bank": session.bank.state_dict(),
    }
    for folder, files in ((CHUNKS_DIR, session.latents.files() + session.chunk_queries.files()),
                          (MEMORY_DIR, list(session.bank.aside_files().values()))):
        shutil.rmtree(directory / folder, ignore_errors=True)
        (directory / folder).mkdir()
        for file in files:
            link_or_copy(file, directory / folder / file.name)
    video = directory / VIDEO_DIR
    shutil.rmtree(video, ignore_errors=True)
    video.mkdir()
    segments = session.video.segments()
    for segment in segments:
        link_or_copy(segment, video / segment.name)
    joined = session.video.complete_join()
    if joined is not None:  # (the app joins the story after every turn; a story never joined is saved without)
        link_or_copy(joined, video / JOINED_NAME)
        state["joined_chunks"] = len(segments)
    torch.save(_pack_tensors(state), directory / STORY_NAME)
    write_mapping(session, directory / MAPPING_NAME)
    (directory / PROMPTS_NAME).write_text(
        json.dumps([{"prompt": s.prompt, "seed": s.seed, "seconds": s.seconds} for s in session.scenes], indent=2)
    )
    (directory / PRESET_NAME).write_text(json.dumps({"preset": session.config.preset}))
    return directory


def _check_save_folder(session: "StorySession", directory: Path) -> None:
    """A save replaces the folder's chunks/, memory/ and video/: refuse a folder where that would delete the story's
    own working files (the session's folder, or a folder whose chunks/, memory/ or video/ holds it), or one inside
    the session's folder (deleted with the session). Nothing is written or removed before this check."""
    work, target = session.video_dir.resolve(), directory.resolve()
    if target == work or work in target.parents:
        raise ValueError(f"cannot save the story into {directory}: it is (or lies inside) the story's working folder "
                         f"{work}, which the story rewrites and removes when it is closed; choose a folder outside it")
    for folder in (CHUNKS_DIR, MEMORY_DIR, VIDEO_DIR):
        replaced = target / folder
        if replaced == work or replaced in work.parents:
            raise ValueError(f"cannot save the story into {directory}: saving replaces {replaced}, which holds the "
                             f"story's working folder {work}; choose another folder")


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
    if state["format"] >= 2:
        state = _unpack_tensors(state)
    if state["preset"] != runtime.config.preset:
        raise ValueError(
            f"the story was made with model preset {state['preset']!r}; load it with that preset "
            f"(the running model is {runtime.config.preset!r})"
        )
    session = StorySession(runtime, StorySettings(**state["settings"]), video_dir=video_dir)
    session.scenes = [SceneRecord(**s) for s in state["scenes"]]
    if state["format"] >= 3:
        for store in (session.latents, session.chunk_queries):
            layout = state["chunk_files"][store.stem]
            files = [directory / CHUNKS_DIR / store.path(g).name for g in range(len(layout["shapes"]))]
            missing = [f.name for f in files if not f.is_file()]
            if missing:
                raise ValueError(f"{directory} is missing {len(missing)} of the story's chunk files "
                                 f"({CHUNKS_DIR}/{missing[0]} first); save the story again from where it was made")
            if layout["dtype"] not in _CHUNK_DTYPES:
                raise ValueError(f"{path} names chunk dtype {layout['dtype']!r}, not one a story writes")
            store.adopt(files, layout["shapes"], _CHUNK_DTYPES[layout["dtype"]])
        session.bank.load_state_dict(state["bank"], aside_from=directory / MEMORY_DIR)
    else:
        session.latents.extend_settled(state["latents"])
        session.chunk_queries.extend_settled(state["chunk_queries"])
        session.bank.load_state_dict(state["bank"])
    session.chunk_scene = list(state["chunk_scene"])
    session.ops = list(state["ops"])
    session.agent.load_state_dict(state["agent"])
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
