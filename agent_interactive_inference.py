"""Multi-prompt batch mode: a .jsonl file of {"prompts": [...]} lines; prompts switch at switch_frame_indices.

    python agent_interactive_inference.py --config_path configs/agent_interactive_inference.yaml --data_path stories.jsonl
    torchrun --nproc_per_node=2 agent_interactive_inference.py --data_path stories.jsonl
"""

from iamflow.cli import run_batch

if __name__ == "__main__":
    run_batch("interactive")
