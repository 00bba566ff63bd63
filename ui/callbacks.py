"""Event handlers of the page. They relay: device work goes to the worker, formatting to ``ui.formatting``.

Each handler finds the story of the calling browser session in the registry (``request.session_hash``).
Handlers return named updates, ``{component: value}`` over the components of ``ui.page.Page``; an output left out
of the dict stays as it is. Story settings travel as ``StorySettings`` from the Advanced panel to the session.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator, Iterator, Sequence

import gradio as gr

from gradio.utils import get_upload_folder

from iamflow import story_files
from iamflow.session import (LIVE, MAX_SCENE_SECONDS, NoSceneRunning, StorySession, StorySettings, validate_prompt,
                             validate_seed)

from . import bundles, formatting, media
from .page import Page
from .sessions import NotYourStory, SessionEntry, SessionLimitReached, SessionRegistry
from .worker import DeviceWorker, RuntimeUnavailable, Waiting

logger = logging.getLogger(__name__)

NOTHING_TO_SWITCH = "Nothing is being generated: add the scene with Add scene."


def _error(message: str) -> gr.Error:
    """An error for the page's popup (which renders HTML): names and paths from users or files show as text."""
    return gr.Error(formatting.popup_text(message))


def _sentence(error: Exception) -> str:
    """An error message as a sentence for the page: capitalised, one final full stop."""
    text = str(error).strip().rstrip(".")
    return f"{text[:1].upper()}{text[1:]}."


def _reason(error: Exception) -> str:
    """What went wrong, in a few words and without server paths."""
    text = " ".join(str(error).split())[:300] or type(error).__name__
    return formatting.without_paths(text)


def _seed(seed) -> int | None:
    """The seed field: empty or -1 is a random seed, anything else must be a seed the generator takes."""
    if seed is None or seed == "" or (isinstance(seed, (int, float)) and seed == -1):
        return None
    return validate_seed(seed)


def _live(session: StorySession) -> StorySession:
    """A story as the page shows it: a scene's first frames go to the live view before the rest of its first chunk
    is decoded, where the model's decoder allows it (``StorySession.first_frames_early``)."""
    session.first_frames_early = True
    return session


@dataclass
class AppOptions:
    """What the command line decides for the whole server."""

    default_preset: str
    presets: dict[str, Any]  # preset name -> its Config (only those this machine can run)
    data_dir: Path
    max_live_sessions: int = 8
    max_sessions_per_client: int | None = None  # None: half of max_live_sessions (at least 1)
    idle_drop_s: float = 120.0
    idle_release_s: float = 1800.0
    sweep_every_s: float = 10.0


class StoryController:
    """Holds the device workers and the session registry; its methods are the page's event handlers.

    ``load_runtime(preset)`` loads a preset's models for the one worker of a server on one device;
    ``device_runtimes`` instead lists ``(device, load_runtime)`` per device: one worker each, a story on one.
    """

    PREPARE_AFTER_S = 0.6  # a pause in typing this long makes the prompt box's text worth preparing a switch for

    def __init__(self, options: AppOptions, load_runtime: Callable[[str], Any] | None = None,
                 device_runtimes: Sequence[tuple[str, Callable[[str], Any]]] = ()):
        if (load_runtime is None) == (not device_runtimes):
            raise ValueError("give either load_runtime (one device) or device_runtimes (one worker per device)")
        self.options = options
        self.bundle_key = bundles.load_or_create_key(options.data_dir / "bundle.key")  # before any thread starts
        self.workers = ([DeviceWorker(load_runtime)] if load_runtime is not None
                        else [DeviceWorker(load, device) for device, load in device_runtimes])
        self.sessions = SessionRegistry(
            self.workers, self._make_session, options.data_dir / "sessions", max_live=options.max_live_sessions,
            max_per_client=options.max_sessions_per_client or max(1, options.max_live_sessions // 2),
            idle_drop_s=options.idle_drop_s, idle_release_s=options.idle_release_s,
            sweep_every_s=options.sweep_every_s,
        )
        self._uploads = options.data_dir / "uploads"  # bundles being checked, before they are a story
        self._uploads.mkdir(parents=True, exist_ok=True)
        self._loading: set[str] = set()  # sessions with a load in progress (one at a time each)
        self._queued: dict[str, int] = {}  # sessions -> scenes accepted into the queue, not started yet
        self._stop_queued: set[str] = set()  # sessions that pressed Stop while their scene waited
        self._state_lock = threading.Lock()
        self.page: Page | None = None  # the components the handlers update; set by ui.layout.build_blocks
        for worker in self.workers:
            worker.preload(options.default_preset)

    @property
    def worker(self) -> DeviceWorker:
        """The first device worker (the only one on a server with one device)."""
        return self.workers[0]

    # --- settings -------------------------------------------------------------------------------------

    def default_settings(self, preset: str | None = None) -> StorySettings:
        return StorySettings.from_config(self.options.presets[preset or self.options.default_preset])

    def live_cap_seconds(self, preset: str | None = None) -> float:
        return self.options.presets[preset or self.options.default_preset].video.live_max_seconds

    def memory_limit(self, preset: str | None = None) -> int:
        return self.options.presets[preset or self.options.default_preset].cache.max_memory_frames

    def _settings(self, memory_policy, transition, max_memory_frames, enrich_prompts, preset,
                  agent_backend) -> tuple[str, StorySettings]:
        """The Advanced panel's values as the preset and the checked settings of a new story; an empty field takes
        the preset's default."""
        preset = preset or self.options.default_preset
        if preset not in self.options.presets:
            raise _error(f"Model preset {preset!r} is not available here; choose one of {', '.join(self.options.presets)}.")
        defaults = self.default_settings(preset)
        settings = dataclasses.replace(
            defaults, memory_policy=memory_policy or defaults.memory_policy, transition=transition or defaults.transition,
            max_memory_frames=int(max_memory_frames if max_memory_frames is not None else defaults.max_memory_frames),
            enrich_prompts=bool(enrich_prompts), agent_backend=agent_backend or defaults.agent_backend)
        try:
            return preset, settings.validate(self.memory_limit(preset))
        except ValueError as err:
            raise _error(f"Advanced settings: {err}.") from None

    @staticmethod
    def _make_session(worker: DeviceWorker, preset: str, settings: StorySettings) -> StorySession:
        """Runs on ``worker``'s thread: a new empty story on its runtime of the preset."""
        return _live(StorySession(worker.runtime(preset), settings))

    # --- session lookup -------------------------------------------------------------------------------

    @staticmethod
    def _key(request: gr.Request | None) -> str:
        key = getattr(request, "session_hash", None) if request is not None else None
        if not key:
            raise _error("This call has no browser session; use the page or gradio_client.")
        return key

    @staticmethod
    def _owner(request: gr.Request | None) -> str | None:
        return getattr(request, "username", None)

    @staticmethod
    def _client(request: gr.Request | None) -> str:
        client = getattr(request, "client", None)
        return str(getattr(client, "host", "") or "")

    def _entry(self, request: gr.Request | None, worker: DeviceWorker | None = None) -> SessionEntry:
        """The calling tab's story entry, made now if it has none (only a first scene or a load call this); a new
        one is pinned to ``worker`` if given, else to the least loaded worker."""
        try:
            entry = self.sessions.get(self._key(request), self._owner(request), self._client(request), worker)
        except (SessionLimitReached, NotYourStory) as err:
            raise _error(str(err)) from None
        self._tell_if_released(request)
        return entry

    def _tell_if_released(self, request: gr.Request | None) -> None:
        """A story released for idleness is not silently replaced: the next call of its tab says so."""
        scenes = self.sessions.released_idle(self._key(request))
        if scenes:
            minutes = self.options.idle_release_s / 60
            gr.Warning(f"Your story of {scenes} scene{'' if scenes == 1 else 's'} was released after {minutes:g} "
                       "minutes without use, so this starts a new story. Download the story bundle to keep a story "
                       "for longer; Load story brings it back.")

    def _existing(self, request: gr.Request | None) -> SessionEntry | None:
        """The calling tab's story entry if it has one; never makes one."""
        entry = self.sessions.find(self._key(request), self._owner(request), check_owner=True)
        if entry is None:
            self._tell_if_released(request)
        return entry

    # --- validation (runs before the event takes the queue) -------------------------------------------

    def validate_scene(self, prompt, seconds, seed, memory_policy, transition, max_memory_frames, enrich_prompts, preset,
                       agent_backend, live=False, request: gr.Request = None):
        """One verdict per input (prompt, seconds, seed, then the settings, which the handler checks). A scene
        that passes is queued: it is counted, so that Stop can stop it before it starts."""
        settings = (memory_policy, transition, max_memory_frames, enrich_prompts, preset, agent_backend)
        ok = gr.validate(True, "")
        prompt_verdict, seconds_verdict, seed_verdict = ok, ok, ok
        try:
            validate_prompt(prompt)
        except ValueError as err:
            prompt_verdict = gr.validate(False, formatting.popup_text(_sentence(err)))
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            seconds = -1.0
        if not live and not 0 < seconds <= MAX_SCENE_SECONDS:
            seconds_verdict = gr.validate(False, f"Scene length must be between 0 and {MAX_SCENE_SECONDS:g} seconds.")
        try:
            _seed(seed)
        except ValueError as err:
            seed_verdict = gr.validate(False, formatting.popup_text(_sentence(err)))
        verdicts = [prompt_verdict, seconds_verdict, seed_verdict]
        key = getattr(request, "session_hash", None)
        if key and all(v is ok for v in verdicts):
            with self._state_lock:
                self._queued[key] = self._queued.get(key, 0) + 1
        return verdicts + [ok] * (len(settings) + 1)

    # --- generation -----------------------------------------------------------------------------------

    def add_scene(self, prompt, seconds, seed, memory_policy, transition, max_memory_frames, enrich_prompts, preset,
                  agent_backend, live=False, request: gr.Request = None, progress=gr.Progress()) -> Iterator[dict]:
        if self._dequeue(self._key(request)):
            gr.Info("Stopped before it started: the story is unchanged.")
            yield {self.page.progress: "Stopped before it started; the story is unchanged."}
            return
        try:
            prompt = validate_prompt(prompt)
        except ValueError as err:
            raise _error(_sentence(err)) from None
        seconds = self._seconds(seconds, live)
        try:
            seed = _seed(seed)
        except ValueError as err:
            raise _error(_sentence(err)) from None
        preset, settings = self._settings(memory_policy, transition, max_memory_frames, enrich_prompts, preset,
                                          agent_backend)
        entry = self._entry(request)
        with entry.lock:
            if entry.busy:
                raise _error("A scene of this story is already being generated.")
            entry.busy, entry.stop_requested, entry.accepting_switches = True, False, True
        try:
            yield from self._generate(entry, prompt, seconds, seed, preset, settings, progress)
        finally:
            with entry.lock:
                if entry.pending_switches:  # the run failed or its page went away
                    logger.warning("scenes asked for during a failed run were not made: %s", entry.pending_switches)
                entry.accepting_switches, entry.pending_switches = False, []
            self.sessions.finish_turn(entry)

    @staticmethod
    def _seconds(seconds, live) -> float | str:
        """The length input: a number of seconds, or LIVE (until the next prompt) when the Live box is ticked."""
        if live:
            return LIVE
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            seconds = -1.0
        if not 0 < seconds <= MAX_SCENE_SECONDS:
            raise _error(f"Scene length must be between 0 and {MAX_SCENE_SECONDS:g} seconds, or tick Live.")
        return seconds

    # --- the next switch, made ready while its prompt is typed -------------------------------------------

    def prepare_scene(self, prompt: str, seed=-1, request: gr.Request = None) -> None:
        """The prompt box changed. Once typing has paused for ``PREPARE_AFTER_S``, the story's device does the
        next switch's work for the draft (``StorySession.prepare_switch``: text, memory, re-cache, and the first
        chunk's denoising with the seed field's seed, or a random one the scene then takes) while it would be
        idle, so a scene added with that prompt starts sooner; any other next step is unaffected. Never waits
        for the device, and does nothing while a scene runs or waits, or before the first scene."""
        entry = self._existing(request)
        if entry is None or not (prompt or "").strip():
            return
        try:
            seed = _seed(seed)
        except ValueError:  # (the Add scene button says what to change)
            return
        with entry.lock:
            entry.drafts += 1
            mine = entry.drafts
        time.sleep(self.PREPARE_AFTER_S)

        def still_the_draft() -> bool:  # (without the entry's lock: the worker asks too, and a holder of that lock
            with self._state_lock:      # may be waiting for the worker)
                queued = self._queued.get(entry.key)
            return entry.drafts == mine and not entry.busy and entry.has_scenes and not queued

        if not still_the_draft() or entry.worker.busy or entry.worker.jobs_waiting():
            return
        session = entry.session

        def prepare() -> None:  # on the worker, in order with the story's scenes
            if still_the_draft() and entry.session is session:
                try:
                    session.prepare_switch(prompt, seed)
                except ValueError:  # a draft that is not a prompt yet
                    pass

        entry.worker.submit(prepare)

    # --- live: a prompt submitted while a scene runs switches the story at the next chunk -----------------

    def submit_scene(self, prompt, seconds, seed, live, start, request: gr.Request):
        """Add scene / Enter on the page: while this tab's scene runs, the prompt switches the story at the next
        chunk; otherwise ``start`` is bumped, which starts the scene in the device queue (``add_scene``)."""
        text = self._switch(prompt, seconds, seed, live, request)
        if text is None:
            return {self.page.start: (start or 0) + 1}
        return {self.page.progress: text}

    def switch_scene(self, prompt: str, seconds: float = 3.0, seed: int = -1, live: bool = True,
                     request: gr.Request = None) -> str:
        """API: switch the scene being generated by this client to ``prompt`` at the next chunk (the running scene
        keeps its chunks; the new one follows in the running /add_scene call's stream)."""
        return self._switch(prompt, seconds, seed, live, request) or NOTHING_TO_SWITCH

    def _switch(self, prompt, seconds, seed, live, request) -> str | None:
        """Hand the prompt to the tab's running scene; None when nothing is being generated for the tab."""
        entry = self._existing(request)
        if entry is None or not entry.accepting_switches:
            return None
        try:
            prompt = validate_prompt(prompt)
            seed = _seed(seed)
        except ValueError as err:
            raise _error(_sentence(err)) from None
        seconds = self._seconds(seconds, live)
        with entry.lock:
            if not entry.accepting_switches:
                return None
            session = entry.session
            if session is not None and session.scenes and prompt in (
                    [session.scenes[-1].prompt] + session.pending_switches + [p for p, _, _ in entry.pending_switches]):
                return "That scene is already being generated or is next."  # a double click, not a new scene
            entry.stop_requested = False  # a prompt after Stop: the stopped scene ends, this one follows
            try:
                if session is None:
                    raise NoSceneRunning("the story is being made")
                index = session.request_switch(prompt, seconds, seed)
            except NoSceneRunning:  # the run has not started or is between scenes: it takes the prompt next
                entry.pending_switches.append((prompt, seconds, seed))
                index = len(session.scenes if session is not None else []) + len(entry.pending_switches)
        return formatting.switching_text(index)

    @staticmethod
    def _hand_over(entry: SessionEntry, session: StorySession) -> None:
        """Runs on the worker inside the session's run: prompts submitted before it could take them go to it."""
        with entry.lock:
            while entry.pending_switches:
                session.request_switch(*entry.pending_switches.pop(0))

    @staticmethod
    def _next_request(entry: SessionEntry) -> tuple | None:
        """The run ended: a prompt submitted meanwhile starts the next one; else the tab stops taking switches."""
        with entry.lock:
            if entry.pending_switches and not entry.closed:
                return entry.pending_switches.pop(0)
            entry.accepting_switches = False
            return None

    def _when_free(self, entry: SessionEntry, job: Callable[[], Any]) -> Generator[dict, None, Any]:
        """``job()`` run on the story's worker (a new story is made there); while it waits behind other stories'
        work on that device, the page's progress line says how many jobs are ahead. Returns what ``job`` returns."""
        if len(self.workers) == 1:  # (one worker: the page's own queue is the only one a scene waits in)
            return job()
        results = []
        for item in entry.worker.stream(lambda: iter([job()]), report_waiting=True):
            if isinstance(item, Waiting):
                yield self._waiting_view(entry, item)
            else:
                results.append(item)
        return results[0]

    def _waiting_view(self, entry: SessionEntry, waiting: Waiting) -> dict:
        return {self.page.progress: formatting.waiting_text(waiting.ahead, entry.worker.device)}

    def _generate(self, entry: SessionEntry, prompt: str, seconds: float, seed: int | None, preset: str,
                  settings: StorySettings, progress) -> Iterator[dict]:
        """One scene, all or nothing. Every way out (done, Stop, a closed page, an error) waits for the worker to
        finish with the story before the story is handed back; a scene that fails is removed whole."""
        try:
            applied = yield from self._when_free(entry, lambda: self.sessions.ensure_session(entry, preset, settings))
        except RuntimeUnavailable as err:
            raise _error(str(err)) from None
        if not applied:
            gr.Warning("Advanced settings and the model apply to a new story; this one keeps its own. Press New story to use them.")
        page, session = self.page, entry.session
        scenes_before = len(session.scenes)

        def chunks() -> Iterator[Any]:
            request = (prompt, seconds, seed)
            while request is not None:  # a run: the scene, then those submitted while it ran
                for event in session.add_scene(*request):
                    entry.feed.push(event.frames, event.scene_index, event.first_frame, event.fps)  # (at once)
                    self._hand_over(entry, session)
                    if entry.stop_requested or entry.closed:
                        session.stop()  # a Stop that came before the scene started still counts
                    yield event
                request = self._next_request(entry)

        if entry.stop_requested:
            session.stop()
        event = None
        # the frames go to the live view as the worker hands them out (``LiveFeed``); the page's panels follow here,
        # once for the chunks that arrived while the page was still taking the last update
        events = entry.worker.stream(chunks, batched=True, report_waiting=len(self.workers) > 1)
        failing, consuming = scenes_before, False  # the scene whose chunk is being shown; errors here are the page's
        shown_registry = shown_memory = None  # the panels as last sent: unchanged panels are not sent again
        yield {page.live: formatting.live_view_html(entry.feed.path)}
        try:
            for batch in events:
                if isinstance(batch, Waiting):  # behind another story's work on this story's device
                    yield self._waiting_view(entry, batch)
                    continue
                event = batch[-1]
                failing, consuming = batch[0].scene_index, True
                for chunk in batch:  # the story's own segments of the chunks (a write error fails the scene)
                    chunk.segment.result()
                text = self._progress(session, event)
                progress((event.chunk_index + 1, event.num_chunks), desc=text)
                update = {page.progress: text,
                          page.scene_entities: formatting.scene_entities_text(event.scene_entities)}
                registry_html = formatting.registry_html(event.registry)
                if registry_html != shown_registry:
                    update[page.entities] = registry_html
                # (the gallery's images are written to files the page fetches: a chunk that kept the same frames
                # sends nothing, rather than the same pictures encoded again)
                memory = [(f.get("key"), f.get("score")) for f in event.memory or []], registry_html
                if memory != shown_memory:
                    update[page.memory] = formatting.memory_gallery(event.memory, event.registry,
                                                                    self._pictures_dir(entry))
                yield update
                shown_registry, shown_memory = registry_html, memory
                consuming = False
            consuming = True
            view = self._story_view(entry)
        except GeneratorExit:
            # The page went away or the run was cancelled: the worker finishes the chunk it is on, then stops;
            # the chunks made so far stay (the scene is marked stopped), and the story is handed back only then.
            session.stop()
            self._wait_for(events)
            raise
        except Exception as err:
            if isinstance(err, ValueError) and event is None and len(session.scenes) == scenes_before:
                raise _error(_sentence(err)) from None  # refused before anything was made
            # the session removes a scene that fails in it; one the page failed to show goes with those after it
            failure = self._failed(entry, events, failing if consuming else len(session.scenes), err)
        else:
            failure = None
        if failure is not None:
            try:  # the page shows the story as it now stands, then the error
                view = self._story_view(entry)
            except Exception:
                logger.exception("the story view after a failed scene could not be made")
            else:
                yield {page.live: formatting.LIVE_PLACEHOLDER, page.progress: failure.message,
                       page.scene_entities: "", **view}
            raise failure
        if event is None:
            gr.Info("Stopped before the first chunk: the story is unchanged.")
            last = "Stopped before the first chunk; the story is unchanged."
        else:
            scene = session.scenes[-1] if session.scenes else None
            last = formatting.progress_text(event.scene_index, event.chunk_index, event.num_chunks, event.elapsed_s,
                                            0.0, done=True)
            if scene is not None and scene.stopped:
                last = f"Scene {scene.index + 1} stopped after {scene.chunks_done} of {scene.num_chunks} chunks."
            elif scene is not None and scene.live:
                last = (f"Scene {scene.index + 1} (live) ran to its cap: {scene.chunks_done} chunks, "
                        f"{scene.seconds:.1f} s.")
        yield {page.progress: last, **view}

    @staticmethod
    def _progress(session: StorySession, event) -> str:
        """The progress line of a chunk; says so when the story switches to a submitted prompt at the next chunk."""
        pending = session.pending_switches
        switching_to = event.scene_index + 1 if pending else None
        if event.live:
            return formatting.live_progress_text(event.scene_index, event.chunk_index, event.elapsed_s,
                                                 session.config.video.live_max_seconds, switching_to)
        text = formatting.progress_text(event.scene_index, event.chunk_index, event.num_chunks, event.elapsed_s,
                                        event.eta_s, event.done)
        return text if switching_to is None else f"{text} · switching to scene {switching_to + 1} at the next chunk"

    @staticmethod
    def _wait_for(events: Iterator[Any]) -> None:
        """Let the worker run out the scene it is on (it stops at the next chunk); what it still sends is dropped."""
        try:
            for _ in events:
                pass
        except Exception:
            logger.warning("the scene also failed while it was being stopped", exc_info=True)

    def _failed(self, entry: SessionEntry, events: Iterator[Any], scenes_before: int, error: Exception) -> gr.Error:
        """A scene failed part-way: stop the worker, wait for it, remove the scene whole; the message says so."""
        session = entry.session
        logger.error("a scene failed: %s", error, exc_info=error)
        session.stop()
        self._wait_for(events)
        number = scenes_before + 1

        def roll_back() -> None:
            while len(session.scenes) > scenes_before:  # (a scene that failed inside the session removed itself)
                session.undo_last_scene()

        entry.worker.call(roll_back)
        return _error(f"Scene {number} failed ({_reason(error)}) and was removed: the story is as it was before it "
                      f"({scenes_before} scene{'' if scenes_before == 1 else 's'}).")

    def _dequeue(self, key: str) -> bool:
        """A queued scene of ``key`` starts: True when Stop was pressed while it waited (it is then not made)."""
        with self._state_lock:
            waiting = self._queued.get(key, 0)
            if waiting <= 1:
                self._queued.pop(key, None)
            else:
                self._queued[key] = waiting - 1
            stopped = key in self._stop_queued
            self._stop_queued.discard(key)
        return stopped

    def stop(self, request: gr.Request) -> dict:
        return {self.page.progress: self._stop(request)}

    def _stop(self, request: gr.Request) -> str:
        """Stop this tab's scene (at its next chunk) or its scene waiting in the queue; what happened, in words."""
        key = self._key(request)
        entry = self._existing(request)
        if entry is None or not entry.busy:
            with self._state_lock:
                if self._queued.get(key, 0) > 0:
                    self._stop_queued.add(key)
                    return "Stopped: the scene waiting in the queue will not be generated."
            return "Nothing is being generated."
        with entry.lock:
            entry.stop_requested = True
            withdrawn = [p for p, _, _ in entry.pending_switches]
            entry.pending_switches = []
            if entry.session is not None:
                withdrawn = entry.session.stop() + withdrawn
        if withdrawn:
            return f"Stopping at the next chunk… ({len(withdrawn)} submitted scene(s) not started were withdrawn.)"
        return "Stopping at the next chunk…"

    # --- story editing --------------------------------------------------------------------------------

    def undo(self, request: gr.Request) -> dict:
        entry = self._existing(request)
        if entry is None:
            gr.Warning("There is no scene to undo.")
            return self._story_view(None)
        with entry.lock:
            if entry.busy:
                raise _error("A scene is being generated; press Stop and wait for it to end before undoing.")
            if not entry.has_scenes:
                gr.Warning("There is no scene to undo.")
                return self._story_view(entry)
            entry.worker.call(entry.session.undo_last_scene)  # in order with device work, never beside it
            entry.feed.clear()
            return self._story_view(entry)

    def new_story(self, memory_policy, transition, max_memory_frames, enrich_prompts, preset, agent_backend,
                  request: gr.Request) -> dict:
        preset, settings = self._settings(memory_policy, transition, max_memory_frames, enrich_prompts, preset,
                                          agent_backend)
        entry = self._existing(request)
        if entry is None:  # no story yet: the settings apply to the first scene
            return self._story_view(None)
        with entry.lock:
            if entry.busy:
                raise _error("A scene is being generated; press Stop and wait for it to end first.")
            entry.feed.clear()
            if entry.session is not None and entry.made_with(preset, settings):
                entry.worker.call(entry.session.reset)
            else:
                old, entry.session = entry.session, None
                if old is not None:
                    entry.worker.call(old.drop_cache)
                try:
                    self.sessions.ensure_session(entry, preset, settings)
                except RuntimeUnavailable as err:
                    raise _error(str(err)) from None
            return self._story_view(entry)

    def load_story(self, upload, request: gr.Request) -> dict:
        if upload is None:
            raise _error("Choose a story bundle (.zip) to load.")
        key = self._key(request)
        path = Path(upload if isinstance(upload, (str, Path)) else getattr(upload, "name", None) or upload.get("path"))
        with self._state_lock:
            if key in self._loading:
                raise _error("A story is already being loaded in this tab; wait for it.")
            self._loading.add(key)
        staging = Path(tempfile.mkdtemp(prefix="load-", dir=self._uploads))
        try:
            entry = self._existing(request)
            if entry is not None and entry.busy:
                raise _error("A scene is being generated; wait for it to end before loading a story.")
            # the story is loaded onto the device of the tab's story, or of the least loaded worker for a new one
            worker = entry.worker if entry is not None else self.sessions.least_loaded()
            try:
                bundles.unpack(path, staging, self.bundle_key, self._bundle_bound)
                preset = self._bundle_preset(staging)
                session = worker.call(self._load_session, worker, staging, preset)
            except (bundles.BundleError, RuntimeUnavailable) as err:
                raise _error(f"Could not load the story: {err}") from None
            entry = self._entry(request, worker)  # the story is good: only now does it take a place on the server
            with entry.lock:
                if entry.busy or entry.worker is not worker:  # (a first scene of this tab began meanwhile)
                    worker.call(session.drop_cache)
                    raise _error("A scene is being generated; wait for it to end before loading a story."
                                 if entry.busy else "A story was started in this tab while the bundle was being "
                                 "loaded; load the bundle again.")
                self.sessions.replace_session(entry, session, preset, session.settings)
                entry.feed.clear()
                gr.Info(f"Loaded a story of {len(session.scenes)} scene(s).")
                return self._story_view(entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            path.unlink(missing_ok=True)  # the upload is not kept once it has been read (Gradio would keep it an hour)
            with self._state_lock:
                self._loading.discard(key)

    def _bundle_bound(self, preset: str | None, scene_seconds: list[float]) -> int:
        config = self.options.presets.get(preset or self.options.default_preset)
        if config is None:
            raise bundles.BundleError(f"the story was made with model preset {preset!r}, which this server does not run")
        return bundles.story_size_bound(config, scene_seconds)

    @staticmethod
    def _load_session(worker: DeviceWorker, directory: Path, preset: str) -> StorySession:
        """Runs on ``worker``'s thread. A signed bundle whose contents do not fit together is reported as damaged."""
        try:
            return _live(StorySession.load(directory, worker.runtime(preset)))
        except RuntimeUnavailable:
            raise
        except ValueError as err:
            raise bundles.BundleError(str(err)) from None
        except (KeyError, TypeError, IndexError, AttributeError, RuntimeError) as err:
            what = f"missing {err}" if isinstance(err, KeyError) else " ".join(str(err).split())[:200]
            raise bundles.BundleError(f"{bundles.DAMAGED}: its saved state does not fit together ({what})") from None

    def _bundle_preset(self, directory: Path) -> str:
        try:
            preset = story_files.saved_preset(directory) or self.options.default_preset
        except ValueError as err:
            raise bundles.BundleError(f"{bundles.DAMAGED}: {err}") from None
        if preset not in self.options.presets:
            raise bundles.BundleError(f"the story was made with model preset {preset!r}, which this server does not run")
        return preset

    def release(self, request: gr.Request) -> None:
        """The tab closed: free the story."""
        key = getattr(request, "session_hash", None)
        if key:  # only the login that made the story may end it (the heartbeat route itself asks for none)
            self.sessions.release(key, self._owner(request), check_owner=True)
            with self._state_lock:  # (its queued scenes, if any, went with its connection)
                if self.sessions.find(key) is None:
                    self._queued.pop(key, None)
                    self._stop_queued.discard(key)

    def live_feed(self, token: str):
        """The live feed of the story whose address token is ``token`` (None: no such story now)."""
        entry = self.sessions.by_feed(token)
        return entry.feed if entry is not None else None

    def page_loaded(self, request: gr.Request) -> dict:
        preset = self.options.default_preset
        return {self.page.server_status: formatting.server_status(preset, [w.device for w in self.workers],
                                                                  [w.is_loaded(preset) for w in self.workers],
                                                                  [w.load_error(preset) for w in self.workers])}

    # --- views ----------------------------------------------------------------------------------------

    def _story_view(self, entry: SessionEntry | None) -> dict:
        """Everything that shows the story as it stands: player, timeline, panels, downloads. Its cost does not grow
        with the story but for joining the segments (no re-encoding); the bundle is made only on request."""
        page = self.page
        session = entry.session if entry is not None else None
        no_file = gr.DownloadButton(value=None, interactive=False)
        if session is None or not session.scenes:
            return {
                page.story: None,
                page.timeline: [],
                page.entities: formatting.registry_html(session.registry_snapshot() if session is not None else {}),
                page.memory: [],
                page.archive: [],
                page.mapping: formatting.mapping_text(session.mapping() if session is not None
                                                      else {"global_registry": {}}),
                page.download_mp4: no_file,
                page.download_mapping: no_file,
                page.download_bundle: no_file,
                page.summary: formatting.story_summary([], session.fps if session is not None else 16),
            }
        scenes = [dataclasses.asdict(s) for s in session.scenes]
        registry = session.registry_snapshot()
        memory = session.memory_snapshot()
        mapping = session.mapping()
        # written where Gradio keeps what it serves, so it serves them without a copy of its own; the previous
        # turn's files go, so a story leaves one copy of its video, not one a turn
        out_dir = self._served_dir(entry) / entry.next_name("story", "").name
        out_dir.mkdir(parents=True, exist_ok=True)
        video = session.video.join(out_dir / "story.mp4")  # (waits for a segment still being written)
        subtitles = media.write_subtitles(formatting.scene_captions(scenes, session.fps), out_dir / "story.vtt")
        mapping_path = out_dir / story_files.MAPPING_NAME
        mapping_path.write_text(json.dumps(mapping, indent=2, ensure_ascii=False))
        self._prune(out_dir.parent, keep=out_dir)
        return {
            page.story: gr.Video(value=str(video), subtitles=str(subtitles)),
            page.timeline: formatting.timeline_rows(scenes, registry),
            page.entities: formatting.registry_html(registry),
            page.memory: formatting.memory_gallery(session.memory_view(), registry, self._pictures_dir(entry)),
            page.archive: formatting.archive_rows(memory.get("archive", []), registry),
            page.mapping: formatting.mapping_text(mapping),
            page.download_mp4: gr.DownloadButton(value=str(video), interactive=True),
            page.download_mapping: gr.DownloadButton(value=str(mapping_path), interactive=True),
            page.download_bundle: no_file,  # made by Prepare story bundle
            page.summary: formatting.story_summary(scenes, session.fps),
        }

    def story_bundle(self, request: gr.Request) -> dict:
        """Prepare story bundle: the story saved and signed as one .zip, made now, on the worker."""
        entry = self._existing(request)
        if entry is None or not entry.has_scenes:
            raise _error("The story is empty: add a scene before saving it.")
        with entry.lock:
            if entry.busy:
                raise _error("A scene is being generated; wait for it to end before saving the story.")
            out_dir = self._served_dir(entry) / "bundle"
            shutil.rmtree(out_dir, ignore_errors=True)

            def save_and_pack() -> Path:
                saved = entry.session.save(out_dir / "story")
                return bundles.pack(saved, out_dir / "iamflow-story.zip", self.bundle_key)

            bundle = entry.worker.call(save_and_pack)
            shutil.rmtree(out_dir / "story", ignore_errors=True)
        return {self.page.download_bundle: gr.DownloadButton(value=str(bundle), interactive=True)}

    @classmethod
    def _pictures_dir(cls, entry: SessionEntry) -> Path:
        """The memory panel's pictures, one file each, kept with the story's other served files."""
        return cls._served_dir(entry) / "pictures"

    @staticmethod
    def _served_dir(entry: SessionEntry) -> Path:
        """This story's folder inside Gradio's cache (files there are served as they are, not copied again)."""
        if entry.served_dir is None:
            entry.served_dir = Path(get_upload_folder()) / "iamflow-stories" / entry.workdir.name
        return entry.served_dir

    @staticmethod
    def _prune(folder: Path, keep: Path) -> None:
        """Earlier views of this story are superseded."""
        for old in folder.glob("story-*"):
            if old != keep and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        self.sessions.close()
        for worker in self.workers:
            worker.shutdown()
