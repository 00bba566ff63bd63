"""The original tool's batch modes, run as a user runs them: python and torchrun, real files, real ffmpeg."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script, *args, torchrun=0, cwd=ROOT):
    python = [sys.executable]
    if torchrun:
        python += ["-m", "torch.distributed.run", f"--nproc_per_node={torchrun}", "--master_port=29631"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*python, script, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=900)


def probe(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,nb_read_frames,r_frame_rate", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)["streams"][0]


@pytest.fixture
def switches(tmp_path):
    path = tmp_path / "switch.yaml"
    path.write_text("switch_frame_indices: [6, 12]\nmax_memory_frames: 2\n")
    return path


def test_interactive_mode_end_to_end(tmp_path, switches):
    data = tmp_path / "stories.jsonl"
    data.write_text(
        json.dumps({"prompts": ["A man in a red shirt walks in a park.", "A dog runs past.", "The man waves."]}) + "\n"
    )
    out = tmp_path / "out"
    result = run("agent_interactive_inference.py", "--preset", "tiny", "--config_path", str(switches),
                 "--data_path", str(data), "--output_folder", str(out), "--num_output_frames", "18",
                 "--save_dir", str(tmp_path / "memory"))
    assert result.returncode == 0, result.stderr[-3000:]
    stream = probe(out / "rank0-0-0_iam_lora.mp4")
    assert stream["codec_name"] == "h264" and stream["r_frame_rate"] == "16/1"
    assert int(stream["nb_read_frames"]) == 4 * 18 - 3
    mapping = json.loads((out / "mapping_0.json").read_text())
    registry = mapping["global_registry"]
    man = [gid for gid, r in registry.items() if r["kind"] == "person" or "man" in r["name"]]
    assert man and {i["prompt_index"] for i in registry[man[0]]["instances"]} == {0, 2}
    archived = sorted(p.name for p in (tmp_path / "memory" / "0").iterdir())
    assert archived and set(archived) == {f"{k}.pt" for k in mapping["frame_archive"]}


def test_single_mode_with_torchrun_splits_lines(tmp_path, switches):
    data = tmp_path / "prompts.txt"
    data.write_text("A man in a red shirt walks.\nA dog runs on the beach.\nA robot waves.\n")
    out = tmp_path / "out"
    result = run("agent_inference.py", "--preset", "tiny", "--config_path", str(switches), "--data_path", str(data),
                 "--output_folder", str(out), "--num_output_frames", "6", torchrun=2)
    assert result.returncode == 0, result.stderr[-3000:]
    videos = sorted(p.name for p in out.glob("*.mp4"))
    assert videos == ["rank0-0-0_iam_lora.mp4", "rank0-2-0_iam_lora.mp4", "rank1-1-0_iam_lora.mp4"]
    assert all(int(probe(out / v)["nb_read_frames"]) == 4 * 6 - 3 for v in videos)
    assert not list(out.glob("mapping_*.json"))  # single mode writes mappings only on request


def test_single_mode_with_torchrun_over_two_nodes_splits_lines(tmp_path, switches):
    """Two torchrun launchers, each a "node" of one process, meeting through a c10d rendezvous (as on two machines):
    the lines are split over the global ranks as with one launcher of two processes."""
    import socket

    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    data = tmp_path / "prompts.txt"
    data.write_text("A man in a red shirt walks.\nA dog runs on the beach.\nA robot waves.\n")
    out = tmp_path / "out"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
                "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=iamflow-two-nodes"]
    args = ["agent_inference.py", "--preset", "tiny", "--config_path", str(switches), "--data_path", str(data),
            "--output_folder", str(out), "--num_output_frames", "6"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    logs = [tmp_path / f"node{i}.log" for i in range(2)]  # files, not pipes: neither launcher waits on a full pipe
    nodes = [subprocess.Popen([*launcher, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=log.open("w")) for log in logs]
    codes = [node.wait(timeout=900) for node in nodes]
    assert codes == [0, 0], "\n".join(log.read_text()[-2000:] for log in logs)
    videos = sorted(p.name for p in out.glob("*.mp4"))
    assert videos == ["rank0-0-0_iam_lora.mp4", "rank0-2-0_iam_lora.mp4", "rank1-1-0_iam_lora.mp4"]
    assert all(int(probe(out / v)["nb_read_frames"]) == 4 * 6 - 3 for v in videos)


@pytest.mark.parametrize(
    "content, yaml_text, frames, message",
    [
        ('{"prompts": ["a", "b"]}\n', "switch_frame_indices: [12, 6]\n", "18", "must be increasing"),
        ('{"prompts": ["a", "b", "c"]}\n', "switch_frame_indices: [6]\n", "18", "give 2 switch indices"),
        ('{"prompts": ["a", "b"]}\nnot json\n', "switch_frame_indices: [6]\n", "18", ":2: not valid JSON"),
        ('{"prompts": []}\n', "switch_frame_indices: [6]\n", "18", ':1: needs a non-empty "prompts"'),
        ('{"prompts": ["a", "b"]}\n', "switch_frame_indices: [6]\n", "20", "multiple of 3"),
        ('{"prompts": ["a", "b"]}\n', "switch_frame_indices: [30]\n", "18", "below num_output_frames"),
        ('{"prompts": ["a"]}\n', "switch_frame_indices: [6]\nmax_memory_frame: 2\n", "18", "unknown key(s) max_memory_frame"),
    ],
)
def test_bad_input_stops_before_generation(tmp_path, content, yaml_text, frames, message):
    data = tmp_path / "stories.jsonl"
    data.write_text(content)
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    out = tmp_path / "out"
    result = run("agent_interactive_inference.py", "--preset", "tiny", "--config_path", str(config),
                 "--data_path", str(data), "--output_folder", str(out), "--num_output_frames", frames)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert not out.exists()


def test_missing_files_are_named(tmp_path):
    result = run("agent_interactive_inference.py", "--preset", "tiny", "--data_path", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2 and "nope.jsonl" in result.stderr and "does not exist" in result.stderr
    result = run("agent_inference.py", "--config_path", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "missing.yaml does not exist" in result.stderr
    cfg = tmp_path / "wan.yaml"
    cfg.write_text(f"generator_ckpt: {tmp_path / 'base.pt'}\ndata_path: {ROOT / 'assets/examples/prompts.txt'}\n")
    result = run("agent_inference.py", "--config_path", str(cfg))
    assert result.returncode == 2 and "weights." in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("switch_frame_indices: [six, 12]\n", "switch_frame_indices must be a list of latent frame indices"),
        ("switch_frame_indices: null\n", "switch_frame_indices must be a list of latent frame indices"),
        ("switch_frame_indices: [6]\nnum_output_frames: 18.5\n", "num_output_frames must be a whole number"),
        ("switch_frame_indices: [6\nmax_memory_frames: 2\n", "c.yaml at line 4"),
        ("switch_frame_indices: [6]\nnum_output_frames: 300000000\n", "lower num_output_frames"),
        ("switch_frame_indices: [6]\noutput_folder: {data}\n", "is a file; give a folder"),
    ],
)
def test_every_bad_key_is_named_before_a_model_loads(tmp_path, yaml_text, message):
    data = tmp_path / "stories.jsonl"
    data.write_text('{"prompts": ["A man walks.", "The man sits."]}\n')
    config = tmp_path / "c.yaml"
    config.write_text(f"output_folder: {tmp_path / 'out'}\nnum_output_frames: 18\n" + yaml_text.format(data=data)
                      if "output_folder" not in yaml_text else yaml_text.format(data=data))
    result = run("agent_interactive_inference.py", "--preset", "tiny", "--config_path", str(config),
                 "--data_path", str(data))
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_unusable_files_are_named_with_exit_2(tmp_path):
    binary = tmp_path / "prompts.txt"
    binary.write_bytes(b"A man walks.\n\x89PNG\r\n\x1a\n\xff\xfe\x00")
    result = run("agent_inference.py", "--preset", "tiny", "--data_path", str(binary),
                 "--output_folder", str(tmp_path / "out"), "--num_output_frames", "6")
    assert result.returncode == 2 and "prompts.txt:2: not UTF-8 text" in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "out").exists()

    stories = tmp_path / "stories.jsonl"
    stories.write_text('{"prompts": ["A man walks."]}\n')
    result = run("-m", "iamflow.agent", str(tmp_path), "--out", str(tmp_path / "maps"))
    assert result.returncode == 2 and "is not a file" in result.stderr and "Traceback" not in result.stderr
    result = run("-m", "iamflow.agent", str(stories), "--out", str(stories))
    assert result.returncode == 2 and "is a file" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "maps").exists()


def test_batch_settings_reach_the_engine_config_as_typed_values(tmp_path):
    """The YAML's keys and the --override strings end in one Config: the override wins over the batch key, the
    other keys of its section stay, and text that YAML would read as something else stays the text given."""
    from iamflow.cli import engine_config, read_batch_config

    config = tmp_path / "c.yaml"
    config.write_text("max_memory_frames: 2\nmemory_policy: nam\nsave_dir: \"runs/#1: [a, b]\"\n"
                      "llm_model_path: \"null\"\noverrides: [memory.transition=soft]\n")
    batch = read_batch_config(str(config), {"preset": "tiny", "overrides": ["cache.max_memory_frames=4", "runtime.seed=7"]})
    engine = engine_config(batch)
    assert engine.cache.max_memory_frames == 4 and engine.runtime.seed == 7  # the command line's overrides win
    assert engine.memory.policy == "nam" and engine.memory.transition == "recache"  # the YAML's list was replaced
    assert engine.memory.save_dir == "runs/#1: [a, b]" and engine.agent.llm_model_path == "null"
    assert engine.agent.backend == "rules"


def test_a_bad_override_is_named_before_a_model_loads(tmp_path):
    data = tmp_path / "stories.jsonl"
    data.write_text('{"prompts": ["A man walks."]}\n')
    args = ["--preset", "tiny", "--data_path", str(data), "--output_folder", str(tmp_path / "out"), "--num_output_frames", "6"]
    for override, message in [("cache.max_memory_frame=3", "did you mean cache.max_memory_frames?"),
                              ("memory.policy=best", "memory.policy must be one of none, sink, nam, iam, nam-prompt"),
                              ("cache.max_memory_frames", "must look like section.key=value")]:
        result = run("agent_interactive_inference.py", *args, "--override", override)
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
