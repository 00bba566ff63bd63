"""The Gradio app of IAM Flow: Blocks wiring, panels, callbacks, the device worker and the session registry.

No model code lives here: stories are ``iamflow.session.StorySession`` objects, driven through
``ui.worker.DeviceWorker``. ``create_app`` builds the page and its services; ``app.py`` launches it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from iamflow.config import ConfigError, load_config

from iamflow.config import EMBEDDED_PRESET, WAN_PRESET

from .callbacks import AppOptions, StoryController
from .layout import build_blocks, launch_kwargs

logger = logging.getLogger(__name__)

__all__ = ["AppOptions", "StoryController", "available_presets", "check_devices", "create_app", "launch_kwargs"]


def available_presets(default: str, config_path: str | None = None, overrides: list[str] | None = None,
                      device: str | None = None) -> dict:
    """Preset name -> Config, for the presets this machine can run: the chosen one, the embedded model, and
    Wan2.1 when its weight paths are configured (in the config file or overrides). ``device``: every preset's
    ``runtime.device`` set to it (the configs of one device worker)."""
    if device is not None:
        overrides = [*(overrides or []), f"runtime.device={device}"]
    configs = {default: load_config(config_path, preset=default, overrides=overrides)}
    if EMBEDDED_PRESET not in configs:
        configs[EMBEDDED_PRESET] = load_config(
            preset=EMBEDDED_PRESET, overrides=None if device is None else [f"runtime.device={device}"])
    if WAN_PRESET not in configs:
        try:
            wan = load_config(config_path, preset=WAN_PRESET, overrides=overrides)
        except ConfigError:
            wan = None
        if wan is not None and wan.weights.generator_ckpt:
            configs[WAN_PRESET] = wan
    return configs


def check_devices(devices: list[str]) -> None:
    """Every device of ``--devices`` exists on this machine; the error says which to list instead."""
    from iamflow.config import is_device_name
    from iamflow.runtime import device_here

    if not devices:
        raise ConfigError("--devices lists no device; give one or more, e.g. --devices cuda:0,cuda:1 or cpu,cpu")
    for device in devices:
        if not is_device_name(device):
            raise ConfigError(f"--devices: {device!r} is not a device; write cpu, cuda or cuda:N "
                              "(e.g. --devices cuda:0,cuda:1)")
        device_here(device, "--devices")


def _device_loader(device: str, configs: dict):
    """The runtime loader of the worker of ``device``; it runs on that worker's thread."""
    from iamflow.session import Runtime

    def load(name: str):
        if device.startswith("cuda"):
            import torch

            # the thread's current device is its worker's: a stream, event or "cuda" tensor made without an index
            # lands there, not on cuda:0 (the setting is per thread and stays for the worker's later jobs)
            torch.cuda.set_device(torch.device(device))
            # a runtime compiled on another device left Dynamo at "eager_on_recompile" (process-wide): this one's
            # blocks are new to Dynamo there and must compile too; its load sets the stance back when it is warm
            torch.compiler.set_stance("default")
        return Runtime.load(configs[name])

    return load


def check_writable(data_dir: Path) -> None:
    """The data folder can be made and written (stories in progress and the bundle key live there): checked at
    startup, so a server never says it is ready and then fails every action."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-check-"):
            pass
    except OSError as err:
        raise ConfigError(
            f"--data-dir {data_dir} cannot be written ({err.strerror or type(err).__name__}); give a folder this "
            "user can write (stories in progress and the bundle signing key are kept there)"
        ) from None


def create_app(
    preset: str = EMBEDDED_PRESET,
    config_path: str | None = None,
    overrides: list[str] | None = None,
    data_dir: str | Path = "runs/app",
    max_live_sessions: int = 8,
    max_sessions_per_client: int | None = None,
    idle_drop_s: float = 120.0,
    idle_release_s: float = 1800.0,
    sweep_every_s: float = 10.0,
    devices: list[str] | None = None,
):
    """The page and its services: ``(demo, controller)``. ``controller.close()`` releases every story.
    ``devices`` (e.g. ``["cuda:0", "cuda:1"]``): one device worker per entry, each with its own models there,
    serving its own stories; None: one worker on the config's ``runtime.device``."""
    from iamflow.session import Runtime

    configs = available_presets(preset, config_path, overrides)
    if devices is not None:
        check_devices(devices)
        split = [name for name, config in configs.items() if len(config.runtime.devices) == 2]
        if split:
            raise ConfigError(
                f"--devices (a story on each device) and runtime.devices={configs[split[0]].runtime.devices} (each "
                "story over two devices) do not combine; leave out one of them")
        per_device = [available_presets(preset, config_path, overrides, device) for device in devices]
    data_dir = Path(data_dir)
    check_writable(data_dir)
    # Stories of an earlier run of the server are gone with its memory; their scratch files go too.
    shutil.rmtree(data_dir / "sessions", ignore_errors=True)
    shutil.rmtree(data_dir / "uploads", ignore_errors=True)
    options = AppOptions(
        default_preset=preset, presets=configs, data_dir=data_dir, max_live_sessions=max_live_sessions,
        max_sessions_per_client=max_sessions_per_client,
        idle_drop_s=idle_drop_s, idle_release_s=idle_release_s, sweep_every_s=sweep_every_s,
    )
    if devices is None:
        controller = StoryController(options, load_runtime=lambda name: Runtime.load(configs[name]))
    else:
        controller = StoryController(options, device_runtimes=[
            (device, _device_loader(device, own)) for device, own in zip(devices, per_device)])
    demo = build_blocks(controller)
    logger.info("app built: presets %s, default %s, %s", ", ".join(configs), preset,
                f"devices {', '.join(devices)}" if devices else "one device worker")
    return demo, controller
