"""A server with several devices (``--devices``): one device worker per device, each story pinned to one worker
for its life, as many scenes generated at once as there are workers. On the CPU with ``cpu,cpu``: two workers,
each with its own runtime of the real embedded model."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.utils import Status

from iamflow.config import ConfigError
from test_app_api import PRESET, entry_of, file_of, free_port, run_app, scene
from ui import create_app, launch_kwargs
from ui.sessions import SessionRegistry
from ui.worker import DeviceWorker, Waiting

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("app-two-workers")
    demo, controller = create_app(preset=PRESET, data_dir=data_dir, sweep_every_s=3600, max_sessions_per_client=8,
                                  devices=["cpu", "cpu"])
    demo.queue(default_concurrency_limit=None)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs(controller))
    deadline = time.monotonic() + 600
    while not all(worker.is_loaded(PRESET) for worker in controller.workers):  # each preloads its own models
        assert not any(worker.load_error(PRESET) for worker in controller.workers), \
            [worker.load_error(PRESET) for worker in controller.workers]
        assert time.monotonic() < deadline, "the workers did not load the model"
        time.sleep(0.1)
    yield {"demo": demo, "controller": controller, "url": f"http://127.0.0.1:{port}/"}
    controller.close()
    demo.close()


def chunk_times(job, seen: list) -> None:
    """When each of a scene's chunks reached the client (the page's progress line names the chunk)."""
    for outputs in job:
        if " · chunk " in str(outputs[1]):
            seen.append(time.monotonic())


def wait_until_no_stories(controller) -> None:
    deadline = time.monotonic() + 60
    while len(controller.sessions):  # the stories of the tests before are being released
        assert time.monotonic() < deadline, controller.sessions.keys()
        time.sleep(0.1)


def test_two_stories_are_generated_at_once_each_on_its_own_worker(two_workers):
    controller = two_workers["controller"]
    first, second = controller.workers
    assert first.runtime(PRESET) is not second.runtime(PRESET)  # each worker has its own models
    clients = [Client(two_workers["url"], verbose=False) for _ in range(2)]
    try:
        jobs = [client.submit(prompt=prompt, seconds=2.0, seed=i + 1, api_name="/add_scene")
                for i, (client, prompt) in enumerate(zip(clients, ["A man in a red shirt walks along the beach.",
                                                                    "A woman in a yellow dress runs in the park."]))]
        times: list[list[float]] = [[], []]
        readers = [threading.Thread(target=chunk_times, args=(job, seen)) for job, seen in zip(jobs, times)]
        for reader in readers:
            reader.start()
        results = [job.result(timeout=300) for job in jobs]
        for reader in readers:
            reader.join(timeout=30)
        assert all(len(r[4]["data"]) == 1 for r in results)  # both stories were made, one scene each

        entries = [entry_of(controller, client) for client in clients]
        assert {entries[0].worker, entries[1].worker} == {first, second}  # one story on each worker
        for entry in entries:
            assert entry.session.runtime is entry.worker.runtime(PRESET)  # its tensors live on its worker's device
        assert controller.sessions.stories_per_worker() == [1, 1]
        # the two scenes were generated at the same time: their chunks' arrival intervals overlap
        assert all(len(seen) >= 2 for seen in times), times
        assert max(seen[0] for seen in times) < min(seen[-1] for seen in times), times

        # every later scene of a story stays on its worker, and so do undo and the story bundle
        pinned = [entry.worker for entry in entries]
        for client, prompt in zip(clients, ["The man waves.", "The woman stops."]):
            assert [row[0] for row in scene(client, prompt, seconds=1.0)[4]["data"]] == [1, 2]
        client = clients[0]
        assert [row[0] for row in client.predict(api_name="/undo")[1]["data"]] == [1]
        bundle = client.predict(api_name="/story_bundle")
        assert [entry_of(controller, c).worker for c in clients] == pinned
        assert controller.sessions.stories_per_worker() == [1, 1]
    finally:
        for client in clients:
            client.close()
    assert Path(file_of(bundle)).suffix == ".zip"


def test_when_every_worker_is_busy_the_next_story_waits_with_its_position_then_takes_a_free_worker(
        two_workers, tmp_path):
    controller = two_workers["controller"]
    wait_until_no_stories(controller)
    clients = [Client(two_workers["url"], verbose=False) for _ in range(3)]
    try:
        running = [clients[i].submit(prompt="A man in a red shirt walks along the beach.", seconds=6.0, seed=i + 1,
                                     api_name="/add_scene") for i in range(2)]
        deadline = time.monotonic() + 120
        while not all(job.status().code in (Status.PROCESSING, Status.ITERATING, Status.PROGRESS) for job in running):
            assert time.monotonic() < deadline, [job.status() for job in running]
            time.sleep(0.05)
        waiting = clients[2].submit(prompt="A dog runs across a field.", seconds=1.0, seed=3, api_name="/add_scene")
        seen = []
        while not any(job.done() for job in running):
            status = waiting.status()
            seen.append((status.code, status.rank))
            if status.code == Status.IN_QUEUE:
                break
            time.sleep(0.05)
        assert (Status.IN_QUEUE, 0) in seen, seen  # first in line: both workers are generating
        assert len(waiting.result(timeout=300)[4]["data"]) == 1
        for job in running:
            job.result(timeout=300)
        # the third story went to the worker that was free when its turn came; each worker holds what it was given
        assert sorted(controller.sessions.stories_per_worker()) == [1, 2]
        third = entry_of(controller, clients[2])
        assert third.session.runtime is third.worker.runtime(PRESET)

        # a bundle loaded into a new tab is a new story: it goes to the least loaded worker and stays there
        saved = shutil.copy(file_of(clients[0].predict(api_name="/story_bundle")), tmp_path / "story.zip")
        loader = Client(two_workers["url"], verbose=False)
        clients.append(loader)
        least = controller.sessions.least_loaded()
        loaded = loader.predict(handle_file(str(saved)), api_name="/load_story")
        assert [row[0] for row in loaded[1]["data"]] == [1]
        entry = entry_of(controller, loader)
        assert entry.worker is least and entry.session.runtime is least.runtime(PRESET)
        assert [row[0] for row in scene(loader, "The man sits down.", seconds=1.0)[4]["data"]] == [1, 2]
        assert entry_of(controller, loader).worker is least
        assert controller.sessions.stories_per_worker() == [2, 2]
    finally:
        for client in clients:
            client.close()


def test_a_story_whose_worker_is_busy_says_how_many_jobs_are_ahead_of_it(two_workers):
    controller = two_workers["controller"]
    wait_until_no_stories(controller)
    first, second = controller.workers
    clients = {name: Client(two_workers["url"], verbose=False) for name in ("ann", "bob", "cid", "dan")}
    try:
        scene(clients["ann"], "A man in a red shirt walks along the beach.", seconds=1.0)
        scene(clients["bob"], "A woman in a yellow dress runs in the park.", seconds=1.0)
        assert [entry_of(controller, clients[n]).worker for n in ("ann", "bob")] == [first, second]
        long = clients["ann"].submit(prompt="The man runs into the sea.", seconds=12.0, seed=2, api_name="/add_scene")
        deadline = time.monotonic() + 120
        while not first.busy:
            assert time.monotonic() < deadline and not long.done()
            time.sleep(0.05)
        scene(clients["dan"], "A dog runs across a field.", seconds=1.0)  # a tie on stories: the idle worker
        assert entry_of(controller, clients["dan"]).worker is second
        # the first worker has the fewest stories but is busy: a new story there waits for it, and says so
        assert not long.done(), "the long scene ended before the test could queue behind it"
        waiting = clients["cid"].submit(prompt="A cat sleeps in the sun.", seconds=1.0, seed=4, api_name="/add_scene")
        assert len(waiting.result(timeout=300)[4]["data"]) == 1
        assert entry_of(controller, clients["cid"]).worker is first
        lines = [outputs[1] for outputs in waiting.outputs()]
        assert "In the queue of cpu: 1 job of other stories ahead" in lines, lines
        assert len(long.result(timeout=300)[4]["data"]) == 2  # the long scene was not disturbed
    finally:
        for client in clients.values():
            client.close()


def test_the_page_says_each_device_is_ready(two_workers):
    controller = two_workers["controller"]
    status = controller.page_loaded(None)[controller.page.server_status]
    assert status.startswith(f"Model: {PRESET} on 2 devices (cpu ready, cpu ready); 2 stories are generated at once.")


def test_a_job_behind_another_on_its_worker_reports_how_many_are_ahead_then_runs():
    worker = DeviceWorker(lambda name: None, device="cpu")
    release = threading.Event()
    try:
        blocking = worker.submit(release.wait, 30)  # another story's scene, running
        queued = worker.submit(lambda: None)  # and one more waiting behind it
        items = worker.stream(lambda: iter(["chunk"]), report_waiting=True)
        first = next(items)
        assert isinstance(first, Waiting) and first.ahead == 2
        release.set()
        rest = list(items)
        assert rest[-1] == "chunk" and all(isinstance(item, Waiting) for item in rest[:-1])
        assert blocking.done() and queued.done()
        # a stream with nothing ahead of it reports no wait at all
        assert list(worker.stream(lambda: iter([1, 2]), report_waiting=True)) == [1, 2]
    finally:
        release.set()
        worker.shutdown()


def test_a_new_story_goes_to_the_worker_with_fewest_stories_then_an_idle_one(tmp_path):
    workers = [DeviceWorker(lambda name: None, device=f"cpu-{i}") for i in range(2)]
    registry = SessionRegistry(workers, lambda worker, preset, settings: None, tmp_path / "sessions",
                               sweep_every_s=3600)
    release = threading.Event()
    try:
        assert registry.get("a").worker is workers[0]  # both empty and idle: the first
        assert registry.get("b").worker is workers[1]  # the fewest stories
        assert registry.get("a").worker is workers[0]  # an existing story keeps its worker
        workers[0].submit(release.wait, 30)  # the first worker is busy: a tie on stories goes to the idle one
        deadline = time.monotonic() + 10
        while not workers[0].busy:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert registry.get("c").worker is workers[1]
        assert registry.stories_per_worker() == [1, 2]
        release.set()
        registry.release("b")
        registry.release("c")
        assert registry.get("d", worker=workers[0]).worker is workers[0]  # a story loaded on a worker stays there
        assert registry.stories_per_worker() == [2, 0]
    finally:
        release.set()
        registry.close()
        for worker in workers:
            worker.shutdown()


def test_a_device_whose_model_fails_to_load_gets_no_new_story_and_the_page_says_so(tmp_path):
    from ui import formatting

    def load(device):
        def load_runtime(preset):
            if device == "cuda:7":
                raise RuntimeError("CUDA out of memory")
            return object()
        return load_runtime

    workers = [DeviceWorker(load(device), device=device) for device in ("cuda:7", "cuda:3")]
    registry = SessionRegistry(workers, lambda worker, preset, settings: None, tmp_path / "sessions",
                               sweep_every_s=3600)
    try:
        for worker in workers:
            worker.preload(PRESET).result(timeout=30)
        assert workers[0].failed and not workers[1].failed
        assert [registry.get(key).worker for key in "abc"] == [workers[1]] * 3  # none on the failed device
        status = formatting.server_status(PRESET, [w.device for w in workers], [w.is_loaded(PRESET) for w in workers],
                                          [w.load_error(PRESET) for w in workers])
        assert status.startswith(f"Model: {PRESET} on 2 devices (cuda:7 failed, cuda:3 ready); 1 story is generated")
        assert f"⚠ The {PRESET} model could not be loaded on cuda:7: CUDA out of memory" in status
    finally:
        registry.close()
        for worker in workers:
            worker.shutdown()


def test_bad_devices_are_refused_with_what_to_write(tmp_path):
    from app import parse_args

    for bad in ("", "cuda:0,,cuda:1", "gpu0", "cuda:x", "cpu,"):
        with pytest.raises(SystemExit):
            parse_args(["--devices", bad])
    assert parse_args(["--devices", "cuda:0, cuda:1"]).devices == ["cuda:0", "cuda:1"]
    assert parse_args([]).devices is None  # one worker, on the config's runtime.device
    import torch

    missing = f"cuda:{torch.cuda.device_count() if torch.cuda.is_available() else 0}"
    with pytest.raises(ConfigError, match=f"--devices names {missing} but .*(use --devices cpu|list only those)"):
        create_app(preset=PRESET, data_dir=tmp_path / "data", devices=["cpu", missing])
    result = run_app("--devices", f"cpu,{missing}", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()))
    assert result.returncode == 2 and f"--devices names {missing}" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(ConfigError, match=r"--devices \(a story on each device\) and runtime.devices=.*leave out one"):
        create_app(preset=PRESET, data_dir=tmp_path / "data", devices=["cpu", "cpu"],
                   overrides=["runtime.devices=[cpu, cpu]"])
    result = run_app("--devices", "cpu,,cpu", "--port", str(free_port()))
    assert result.returncode == 2 and "has an empty entry" in result.stderr and "--devices cpu,cpu" in result.stderr
