"""Few-step flow-matching sampler (Self-Forcing style).

The training schedule has ``num_train_timesteps`` sigmas, linearly spaced from 1 down to 0 and shifted by
``shift`` (sigma' = shift*s / (1 + (shift-1)*s)). With warping, a denoising step ``k`` of the list names the
training timestep at index ``num_train_timesteps - k``: [1000, 750, 500, 250] becomes
t = [1000, 937.5, 833.33, 625.0], sigma = t / 1000.

A step predicts x0 = x_t - sigma * v and, unless it was the last, re-noises x0 to the next sigma:
x = (1 - sigma') * x0 + sigma' * noise, with fresh noise (``renoise: fresh``, what few-step distilled weights
expect) or with the noise the step predicts, x0 + v (``renoise: predicted``: exactly an Euler step of the flow
ODE, x' = x + (sigma' - sigma) * v, which keeps the detail an undistilled model has laid down), or a mix of
the two (``renoise: mixed``, ``renoise_fresh`` the fresh share of the noise's variance).
"""

from __future__ import annotations

import torch

from iamflow.config import SamplerConfig


def shifted_schedule(num_train_timesteps: int, shift: float) -> torch.Tensor:
    """The training timesteps, float64, index 0 = t 1000 (pure noise), with a final 0 appended."""
    sigmas = torch.linspace(1.0, 0.0, num_train_timesteps + 1, dtype=torch.float64)[:-1]
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    return torch.cat([sigmas * num_train_timesteps, torch.zeros(1, dtype=torch.float64)])


class FlowSampler:
    def __init__(self, cfg: SamplerConfig):
        self.cfg = cfg
        steps = torch.tensor(cfg.denoising_step_list, dtype=torch.long)
        if cfg.warp_denoising_step:
            timesteps = shifted_schedule(cfg.num_train_timesteps, cfg.shift)[cfg.num_train_timesteps - steps]
        else:
            timesteps = steps.to(torch.float64)
        self.timesteps = timesteps.float()  # [steps]
        self.sigmas = (timesteps / cfg.num_train_timesteps).float()
        self.context_timestep = float(cfg.context_noise)

    def __len__(self) -> int:
        return len(self.timesteps)

    @staticmethod
    def to_x0(x_t: torch.Tensor, velocity: torch.Tensor, sigma: float) -> torch.Tensor:
        return (x_t.double() - sigma * velocity.double()).to(x_t.dtype)

    @staticmethod
    def predicted_noise(x_t: torch.Tensor, x0: torch.Tensor, sigma: float) -> torch.Tensor:
        """The noise that, with x0, makes x_t: (x_t - (1 - sigma) * x0) / sigma."""
        return ((x_t.double() - (1 - sigma) * x0.double()) / sigma).to(x0.dtype)

    @staticmethod
    def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
        return ((1 - sigma) * x0.double() + sigma * noise.double()).to(x0.dtype)
