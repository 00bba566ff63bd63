"""IAM Flow live storytelling app: ``python app.py`` and open http://127.0.0.1:7860.

Binds to 127.0.0.1 unless ``--host`` says otherwise; no share link is ever made. The embedded storyworld
model runs on the CPU; ``--preset wan2.1-t2v-1.3b --config my_wan.yaml`` serves Wan2.1 with local weights.
``--devices cuda:0,cuda:1`` serves one story per listed device at once (each device loads its own models).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import yaml

from iamflow.config import EMBEDDED_PRESET

logger = logging.getLogger("iamflow.app")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="IAM Flow: tell a story scene by scene in the browser.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on (default 7860)")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="require this login for the page and the API")
    parser.add_argument("--preset", help="model preset (default: the config file's preset, else storyworld)")
    parser.add_argument("--config", help="YAML config laid over the preset (weight paths, policies, ...)")
    parser.add_argument("--override", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override, repeatable (e.g. cache.max_memory_frames=3)")
    parser.add_argument("--devices", type=parse_devices, metavar="DEVICE,DEVICE,...",
                        help="one device worker per listed device, e.g. cuda:0,cuda:1 (or cpu,cpu): as many stories "
                             "are generated at once, each on its own device (default: one, runtime.device)")
    parser.add_argument("--data-dir", default="runs/app", help="where stories in progress and the bundle key live")
    parser.add_argument("--max-sessions", type=int, default=8, help="most stories held at once (default 8)")
    parser.add_argument("--max-sessions-per-client", type=int, default=None,
                        help="most stories one client address may hold (default half of --max-sessions)")
    parser.add_argument("--idle-timeout", type=float, default=1800.0,
                        help="seconds after which an idle story is released (default 1800)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    if args.auth is not None and (":" not in args.auth or not args.auth.split(":", 1)[0] or not args.auth.split(":", 1)[1]):
        parser.error("--auth must look like user:password (both parts non-empty)")
    if not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535 (got {args.port})")
    if args.max_sessions < 1:
        parser.error(f"--max-sessions must be at least 1 (got {args.max_sessions})")
    if args.max_sessions_per_client is not None and not 1 <= args.max_sessions_per_client <= args.max_sessions:
        parser.error(f"--max-sessions-per-client must be between 1 and --max-sessions {args.max_sessions} "
                     f"(got {args.max_sessions_per_client})")
    if not (math.isfinite(args.idle_timeout) and args.idle_timeout > 0):
        parser.error(f"--idle-timeout must be a number of seconds above 0 (got {args.idle_timeout})")
    return args


def parse_devices(text: str) -> list[str]:
    """``--devices cuda:0,cuda:1`` -> ["cuda:0", "cuda:1"]; whether they exist is checked when the app starts."""
    devices = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not d for d in devices):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty entry; list devices separated by commas, "
                                         "e.g. --devices cuda:0,cuda:1 or --devices cpu,cpu")
    from iamflow.config import is_device_name

    for device in devices:
        if not is_device_name(device):
            raise argparse.ArgumentTypeError(f"{device!r} is not a device; write cpu, cuda or cuda:N "
                                             "(e.g. --devices cuda:0,cuda:1)")
    return devices


def default_preset(args: argparse.Namespace) -> str:
    if args.preset:
        return args.preset
    if args.config and Path(args.config).is_file():
        values = yaml.safe_load(Path(args.config).read_text()) or {}
        if isinstance(values, dict) and values.get("preset"):
            return str(values["preset"])
    return EMBEDDED_PRESET


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from iamflow.config import ConfigError
    from ui import create_app, launch_kwargs

    try:
        demo, controller = create_app(
            preset=default_preset(args), config_path=args.config, overrides=args.override, data_dir=args.data_dir,
            max_live_sessions=args.max_sessions, max_sessions_per_client=args.max_sessions_per_client,
            idle_release_s=args.idle_timeout, idle_drop_s=min(120.0, args.idle_timeout), devices=args.devices,
        )
    except ConfigError as err:
        logger.error("%s", err)
        return 2
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    demo.queue(default_concurrency_limit=None)
    try:
        demo.launch(server_name=args.host, server_port=args.port, auth=auth, **launch_kwargs(controller))
    finally:
        controller.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
