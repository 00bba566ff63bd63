"""The one thread that owns the models: every piece of work that touches the device runs here, in order.

Gradio handlers hand it a job and relay what comes back. ``call`` runs a function and returns its result;
``stream`` runs a generator and passes its items through as they are made, so a handler can yield each chunk
while the next one is being generated. Runtimes (model weights) are loaded here once per preset and kept.

A server with several devices (``app.py --devices cuda:0,cuda:1``) has one worker per device; a story is pinned
to one of them for its life (``ui.sessions``), so each worker's jobs are its own stories' and run in order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Iterator

logger = logging.getLogger(__name__)

_END = object()

# Workers load their models one at a time: a first load imports libraries whose lazy imports (transformers') are
# not safe from two threads at once, Dynamo compiles one graph at a time anyway, and its stance is process-wide.
_load_lock = threading.Lock()


class RuntimeUnavailable(RuntimeError):
    """A preset's models could not be loaded; the message says what is missing and what to do."""


class Waiting:
    """Yielded by ``stream(..., report_waiting=True)`` while its job waits behind ``ahead`` jobs of the worker."""

    def __init__(self, ahead: int):
        self.ahead = ahead


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class DeviceWorker:
    """Runs device jobs one at a time on a dedicated thread and keeps one runtime per preset. ``device`` names
    the device it serves (``cuda:1``, ``cpu``) in messages; empty: the config's own."""

    WAIT_REPORT_S = 0.5  # how often a waiting stream says how many jobs are still ahead of it

    def __init__(self, load_runtime: Callable[[str], Any], device: str = ""):
        self._load_runtime = load_runtime
        self.device = device
        self._jobs: queue.Queue = queue.Queue()
        self._runtimes: dict[str, Any] = {}
        self._load_errors: dict[str, str] = {}
        self._state_lock = threading.Lock()
        self._busy_since: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"iamflow-device-worker-{device or 'main'}",
                                        daemon=True)
        self._thread.start()

    # --- runtimes --------------------------------------------------------------------------------------

    def runtime(self, preset: str) -> Any:
        """The loaded runtime of ``preset``; call it from a job (it loads on the worker thread on first use)."""
        if threading.current_thread() is not self._thread:
            return self.call(self.runtime, preset)
        if preset not in self._runtimes:
            started = time.monotonic()
            logger.info("loading runtime for preset %s%s", preset, f" on {self.device}" if self.device else "")
            try:
                self._runtimes[preset] = self._load(preset)
            except Exception as error:  # the message is shown on the page; the app keeps serving
                where = f" on {self.device}" if self.device else ""
                message = f"The {preset} model could not be loaded{where}: {error}"
                with self._state_lock:
                    self._load_errors[preset] = message
                logger.exception("runtime for preset %s failed to load", preset)
                raise RuntimeUnavailable(message) from error
            with self._state_lock:
                self._load_errors.pop(preset, None)
            logger.info("runtime for preset %s loaded in %.1f s", preset, time.monotonic() - started)
        return self._runtimes[preset]

    def _load(self, preset: str) -> Any:
        with _load_lock:
            return self._load_runtime(preset)

    def preload(self, preset: str) -> Future:
        """Start loading ``preset`` in the background; the first scene does not pay for it."""
        return self.submit(self._preload, preset)

    def _preload(self, preset: str) -> None:
        try:
            self.runtime(preset)
        except RuntimeUnavailable:
            pass

    def load_error(self, preset: str) -> str | None:
        with self._state_lock:
            return self._load_errors.get(preset)

    def is_loaded(self, preset: str) -> bool:
        return preset in self._runtimes

    @property
    def failed(self) -> bool:
        """A model failed to load here and none is loaded: new stories go elsewhere while another worker can."""
        with self._state_lock:
            return bool(self._load_errors) and not self._runtimes

    @property
    def busy(self) -> bool:
        with self._state_lock:
            return self._busy_since is not None

    def jobs_waiting(self) -> int:
        """Jobs queued and not started yet (the one running is not counted)."""
        return self._jobs.qsize()

    def jobs_ahead(self, future: Future) -> int | None:
        """How many jobs run before the job of ``future`` starts (the running one included); None once it has."""
        with self._jobs.mutex:
            for position, job in enumerate(self._jobs.queue):
                if job[3] is future:
                    return position + (1 if self.busy else 0)
        return None

    # --- jobs -------------------------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        self._jobs.put((fn, args, kwargs, future))
        return future

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` on the worker thread and return its result (or raise its error) here."""
        if threading.current_thread() is self._thread:
            return fn(*args, **kwargs)
        return self.submit(fn, *args, **kwargs).result()

    def stream(self, make_items: Callable[[], Iterator[Any]], batched: bool = False,
               report_waiting: bool = False) -> Iterator[Any]:
        """Run the generator made by ``make_items`` on the worker thread; yield its items here as they come.
        ``batched``: yield lists instead, each holding every item that had arrived when the consumer came back
        for more (a consumer slower than the producer catches up in one step instead of falling behind).
        ``report_waiting``: while the job waits behind others, yield a ``Waiting`` now and then (before any item).

        If the consumer stops early the producer is not interrupted mid-item: the caller is expected to ask
        the producer to stop (``StorySession.stop``), which it does at its next item boundary.
        """
        channel: queue.Queue = queue.Queue()
        started = threading.Event()

        def produce() -> None:
            started.set()
            try:
                for item in make_items():
                    channel.put(item)
            except BaseException as error:  # relayed to the handler, which shows it
                channel.put(_Failure(error))
            finally:
                channel.put(_END)

        job = self.submit(produce)
        if report_waiting:
            while not started.wait(self.WAIT_REPORT_S) and not job.done():  # (done: cancelled at shutdown)
                ahead = self.jobs_ahead(job)
                if ahead:
                    yield Waiting(ahead)
            if not started.is_set():
                raise RuntimeError(f"the device worker{' of ' + self.device if self.device else ''} has stopped")
        if not batched:
            yield from _read(channel)
            return
        items = _read(channel)
        for first in items:
            batch = [first]
            while not channel.empty():  # what has arrived meanwhile (the end and a failure stay for the next read)
                head = channel.queue[0]
                if head is _END or isinstance(head, _Failure):
                    break
                batch.append(next(items))
            yield batch

    def _run(self) -> None:
        while True:
            fn, args, kwargs, future = self._jobs.get()
            if fn is None:
                future.set_result(None)
                return
            if not future.set_running_or_notify_cancel():
                continue
            with self._state_lock:
                self._busy_since = time.monotonic()
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)
            finally:
                with self._state_lock:
                    self._busy_since = None

    def shutdown(self, timeout: float = 30.0) -> None:
        """Finish the jobs already queued, then end the thread and drop the runtimes."""
        done: Future = Future()
        self._jobs.put((None, (), {}, done))
        try:
            done.result(timeout=timeout)
        except Exception:
            logger.warning("device worker did not finish its jobs within %.0f s", timeout)
        self._runtimes.clear()


def _read(channel: queue.Queue) -> Iterator[Any]:
    """The items a producer puts in ``channel``, up to its end; its failure is raised here."""
    while True:
        item = channel.get()
        if item is _END:
            return
        if isinstance(item, _Failure):
            raise item.error
        yield item
