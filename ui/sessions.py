"""Server-side registry of live stories, one per browser session.

A browser tab is identified by Gradio's session hash. Its entry holds the ``StorySession`` (K/V cache, memory
bank, entity registry) between turns, plus a folder for the files the page shows. An entry is made only for a
story (the first scene, or a loaded bundle), never by a look or an undo; it belongs to the login that made it
(on a server with ``--auth``) and only that login can use or release it. Entries are released when the tab
closes or after ``idle_release_s`` without use; after ``idle_drop_s`` an idle story drops its K/V cache and keeps
its latents (rebuilt on the next scene). At most ``max_live`` stories are held at once, and at most
``max_per_client`` from one client address.

With several device workers, an entry is pinned to one of them when it is made (the one holding the fewest
stories, an idle one on a tie, never one whose models failed to load while another's did not) and every device job
of its story runs there: its tensors live on that device.
"""

from __future__ import annotations

import gc
import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .live_feed import LiveFeed
from .worker import DeviceWorker

if TYPE_CHECKING:
    from iamflow.session import StorySettings

logger = logging.getLogger(__name__)


class SessionLimitReached(RuntimeError):
    """The server holds as many live stories as it may; the message says so in words for the page."""


class NotYourStory(PermissionError):
    """The session key is known but belongs to another login."""


@dataclass
class SessionEntry:
    key: str
    workdir: Path
    owner: str | None = None  # the login that made the story (None on a server without --auth)
    client: str = ""  # the address it was made from (for the per-client limit)
    worker: DeviceWorker | None = None  # the worker its story lives on, for the entry's whole life
    session: Any = None
    preset: str = ""  # the model preset and settings its story was made with
    settings: StorySettings | None = None
    last_used: float = field(default_factory=time.monotonic)
    busy: bool = False  # a scene is being generated for this story
    stop_requested: bool = False  # Stop was pressed for the scene being generated (or about to be)
    accepting_switches: bool = False  # a prompt submitted now switches the running scene at its next chunk
    pending_switches: list = field(default_factory=list)  # (prompt, seconds, seed) for the run, not handed over yet
    closed: bool = False  # the tab went away; released as soon as it is not busy
    cache_dropped: bool = False
    turn: int = 0  # counts files made for this story, so names never repeat
    served_dir: Path | None = None  # its files in Gradio's cache (served without a copy), gone with it
    feed: LiveFeed = field(default_factory=LiveFeed)  # the frames on their way to the page's live view
    drafts: int = 0  # prompt-box edits seen (a pause after the last one prepares the next switch)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def next_name(self, stem: str, suffix: str) -> Path:
        self.turn += 1
        return self.workdir / f"{stem}-{self.turn:04d}{suffix}"

    @property
    def has_scenes(self) -> bool:
        return self.session is not None and len(self.session.scenes) > 0

    def made_with(self, preset: str, settings: StorySettings) -> bool:
        """Its story was made with this model preset and these settings."""
        return (self.preset, self.settings) == (preset, settings)


class SessionRegistry:
    """Live stories keyed by browser session; creation, idle cache dropping and release."""

    def __init__(
        self,
        workers: DeviceWorker | list[DeviceWorker],
        make_session: Callable[[DeviceWorker, str, StorySettings], Any],
        root: str | Path,
        max_live: int = 8,
        max_per_client: int | None = None,
        idle_drop_s: float = 120.0,
        idle_release_s: float = 1800.0,
        sweep_every_s: float = 10.0,
    ):
        self.workers = [workers] if isinstance(workers, DeviceWorker) else list(workers)
        if not self.workers:
            raise ValueError("a session registry needs at least one device worker")
        self.make_session = make_session  # (worker, preset, settings) -> a new story; runs on that worker
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_live = max_live
        self.max_per_client = max_per_client or max_live
        self.idle_drop_s = idle_drop_s
        self.idle_release_s = idle_release_s
        self._entries: dict[str, SessionEntry] = {}
        self._released_idle: dict[str, int] = {}  # key -> scenes of a story released for idleness, until told
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, args=(sweep_every_s,), name="iamflow-session-sweeper",
                                         daemon=True)
        self._sweeper.start()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def stories_per_worker(self) -> list[int]:
        """Entries pinned to each worker, in the order of ``workers``."""
        with self._lock:
            return self._counts()

    def _counts(self) -> list[int]:
        counts = [0] * len(self.workers)
        for entry in self._entries.values():
            counts[self.workers.index(entry.worker)] += 1
        return counts

    def least_loaded(self) -> DeviceWorker:
        """The worker a new story goes to: one whose models load, with the fewest stories pinned to it, then idle
        before busy, then the first."""
        with self._lock:
            return self._least_loaded()

    def _least_loaded(self) -> DeviceWorker:
        counts = self._counts()
        order = sorted(range(len(self.workers)),
                       key=lambda i: (self.workers[i].failed, counts[i],
                                      self.workers[i].busy or self.workers[i].jobs_waiting() > 0, i))
        return self.workers[order[0]]

    def find(self, key: str, owner: str | None = None, check_owner: bool = False) -> SessionEntry | None:
        """The entry of ``key`` if there is one (and, with ``check_owner``, if ``owner`` made it)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or (check_owner and entry.owner != owner):
            return None
        entry.last_used = time.monotonic()
        return entry

    def by_feed(self, token: str) -> SessionEntry | None:
        """The entry whose live view has the address token ``token`` (None for a story released meanwhile)."""
        with self._lock:
            return next((e for e in self._entries.values() if secrets.compare_digest(e.feed.token, token)), None)

    def get(self, key: str, owner: str | None = None, client: str = "",
            worker: DeviceWorker | None = None) -> SessionEntry:
        """The entry of ``key``, made when a story starts; refuses a new one when the server (or this client's
        share of it) is full, and an existing one to anyone but its owner. A new entry is pinned to ``worker``
        (a story loaded there already), else to the least loaded worker."""
        if not key:
            raise ValueError("a browser session key is required")
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                if len(self._entries) >= self.max_live:
                    raise SessionLimitReached(
                        f"This server is holding the most stories it can ({self.max_live}). "
                        "Try again in a few minutes, when an idle story has been released."
                    )
                mine = sum(1 for e in self._entries.values() if e.client == client)
                if mine >= self.max_per_client:
                    raise SessionLimitReached(
                        f"Your address already holds {mine} stories on this server, the most one client may. "
                        "Close a tab you no longer use (its story is released), or wait until an idle one is."
                    )
                safe = "".join(c for c in key if c.isalnum() or c in "-_")[:64] or "session"
                entry = SessionEntry(key=key, workdir=self.root / safe, owner=owner, client=client,
                                     worker=worker or self._least_loaded())
                entry.workdir.mkdir(parents=True, exist_ok=True)
                self._entries[key] = entry
                where = f" on {entry.worker.device}" if len(self.workers) > 1 else ""
                logger.info("story session opened for %s%s (%d live)", safe, where, len(self._entries))
            elif entry.owner != owner:
                raise NotYourStory("this browser session belongs to another login")
        entry.last_used = time.monotonic()
        return entry

    def ensure_session(self, entry: SessionEntry, preset: str, settings: StorySettings) -> bool:
        """Make sure ``entry`` has a story with these settings; returns False when an existing story keeps its own.

        Settings (and the model preset) belong to a story: they apply when a story is created, i.e. for the
        first scene or after New story. A story that already has scenes keeps the settings it was made with.
        """
        with entry.lock:
            if entry.session is not None and (entry.has_scenes or entry.made_with(preset, settings)):
                return entry.made_with(preset, settings)
            old = entry.session
            entry.session = entry.worker.call(self.make_session, entry.worker, preset, settings)
            entry.preset, entry.settings, entry.cache_dropped = preset, settings, False
        if old is not None:
            self._discard_session(old, entry.worker)
        return True

    def replace_session(self, entry: SessionEntry, session: Any, preset: str, settings: StorySettings) -> None:
        """Put a loaded story (loaded on the entry's worker) in place of the entry's current one."""
        with entry.lock:
            old, entry.session = entry.session, session
            entry.preset, entry.settings, entry.cache_dropped = preset, settings, False
        if old is not None and old is not session:
            self._discard_session(old, entry.worker)

    def finish_turn(self, entry: SessionEntry) -> None:
        """A generation for this entry ended; release it now if its tab closed meanwhile."""
        entry.busy = False
        entry.cache_dropped = False  # the scene rebuilt the cache
        entry.last_used = time.monotonic()
        if entry.closed:
            self.release(entry.key)

    def release(self, key: str, owner: str | None = None, check_owner: bool = False) -> bool:
        """Forget the story of ``key`` and free what it held (device memory, files); with ``check_owner``, only
        when ``owner`` is the login that made it."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            if check_owner and entry.owner != owner:
                logger.warning("a release of a story was refused: the request is not from the login that owns it")
                return False
            if entry.busy:
                # The generator is still running on the worker: stop it; finish_turn releases it afterwards.
                entry.closed = True
                if entry.session is not None:
                    entry.session.stop()
                return False
            del self._entries[key]
        session, entry.session = entry.session, None
        entry.feed.close()
        if session is not None:
            self._discard_session(session, entry.worker)
        shutil.rmtree(entry.workdir, ignore_errors=True)
        if entry.served_dir is not None:
            shutil.rmtree(entry.served_dir, ignore_errors=True)
        logger.info("story session released (%d live)", len(self))
        return True

    def _discard_session(self, session: Any, worker: DeviceWorker) -> None:
        def drop() -> None:
            close = getattr(session, "close", None)
            if callable(close):
                close()
            else:
                session.drop_cache()

        try:
            worker.call(drop)
        except Exception:
            logger.exception("freeing a story's cache failed")
        del session
        gc.collect()

    def sweep(self, now: float | None = None) -> None:
        """Release stories idle past ``idle_release_s``; drop the K/V cache of those idle past ``idle_drop_s``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            idle = now - entry.last_used
            if entry.busy:
                continue
            if idle >= self.idle_release_s:
                logger.info("releasing a story idle for %.0f s", idle)
                scenes = len(entry.session.scenes) if entry.session is not None else 0
                if self.release(entry.key) and scenes:
                    with self._lock:
                        if len(self._released_idle) >= 10_000:  # (tabs that never come back)
                            self._released_idle.pop(next(iter(self._released_idle)))
                        self._released_idle[entry.key] = scenes
            elif idle >= self.idle_drop_s and entry.session is not None and not entry.cache_dropped:
                # Queued behind any running scene; skipped when it runs if the story was used meanwhile.
                entry.worker.submit(self._drop_if_idle, entry, entry.last_used, idle)

    def released_idle(self, key: str) -> int:
        """Scenes of the story of ``key`` released for idleness since its tab last heard of it (0: none); told once."""
        with self._lock:
            return self._released_idle.pop(key, 0)

    def _drop_if_idle(self, entry: SessionEntry, last_used: float, idle: float) -> None:
        with entry.lock:
            if entry.busy or entry.session is None or entry.cache_dropped or entry.last_used != last_used:
                return
            entry.session.drop_cache()
            entry.cache_dropped = True
        logger.info("dropped the K/V cache of a story idle for %.0f s", idle)

    def _sweep_loop(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                self.sweep()
            except Exception:
                logger.exception("session sweep failed")

    def close(self) -> None:
        """Stop the sweeper and release every story (server shutdown)."""
        self._stop.set()
        for key in self.keys():
            entry = self.find(key)
            if entry is not None:
                entry.busy = False
            self.release(key)
