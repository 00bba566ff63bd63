"""The GPU benchmark runs only on the device, but its command must load and explain itself everywhere."""

import subprocess
import sys


def test_bench_command_loads_and_lists_its_options():
    done = subprocess.run([sys.executable, "-m", "iamflow.bench", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--random-weights" in done.stdout and "time to first frame" in done.stdout
