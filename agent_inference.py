"""Single-prompt batch mode: one prompt a line of a .txt file, one video a line.

    python agent_inference.py --config_path configs/agent_inference.yaml --data_path prompts.txt
    torchrun --nproc_per_node=2 agent_inference.py --data_path prompts.txt
"""

from iamflow.cli import run_batch

if __name__ == "__main__":
    run_batch("single")
