"""Text encoders: umT5 loading from both checkpoint layouts, Wan's zero padding, the prompt cache, MiniLM."""

import pytest
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

from iamflow.engine.text_encoder import (
    MiniLMTextEncoder,
    StateDictMismatchError,
    TextEncoder,
    UMT5TextEncoder,
    to_wan_original_keys,
)

TEXT_LEN = 16
CORPUS = [
    "a man in a red jacket walks down the street",
    "the woman sits by the river at night",
    "a dog runs across the green field while the sun sets",
]


def _write_tokenizer(folder):
    """A tiny word-level tokenizer with umT5's special ids (pad 0, eos 1, unk 2) and its trailing </s>."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"]))
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(str(folder))
    return fast


@pytest.fixture(scope="module")
def tiny_umt5(tmp_path_factory):
    """A random tiny umT5 saved as a diffusers-style repo (text_encoder/ + tokenizer/) and as a Wan .pth."""
    root = tmp_path_factory.mktemp("umt5")
    tokenizer = _write_tokenizer(root / "tokenizer")
    torch.manual_seed(0)
    config = UMT5Config(
        vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", dropout_rate=0.0,
        tie_word_embeddings=False,
    )
    model = UMT5EncoderModel(config).eval()
    with torch.no_grad():  # T5's init leaves layer norms at 1; randomise them so a swapped norm would show
        for name, param in model.named_parameters():
            if "layer_norm" in name:
                param.uniform_(0.5, 1.5)
    model.save_pretrained(str(root / "text_encoder"))
    wan_pth = root / "models_t5_umt5-xxl-enc-bf16.pth"
    torch.save(to_wan_original_keys(model.state_dict()), wan_pth)
    return {"root": root, "model": model, "wan_pth": wan_pth}


def test_wan_keys_follow_wan_t5_layout(tiny_umt5):
    keys = set(to_wan_original_keys(tiny_umt5["model"].state_dict()))
    assert {"token_embedding.weight", "norm.weight", "blocks.1.pos_embedding.embedding.weight",
            "blocks.0.norm1.weight", "blocks.0.norm2.weight", "blocks.0.attn.q.weight", "blocks.0.attn.o.weight",
            "blocks.0.ffn.gate.0.weight", "blocks.0.ffn.fc1.weight", "blocks.0.ffn.fc2.weight"} <= keys
    assert len(keys) == 2 + 2 * 10


def test_folder_and_wan_pth_give_identical_embeddings(tiny_umt5):
    from_folder = UMT5TextEncoder.from_pretrained(tiny_umt5["root"], text_len=TEXT_LEN, device="cpu")
    from_pth = UMT5TextEncoder.from_pretrained(
        tiny_umt5["wan_pth"], tokenizer_path=tiny_umt5["root"] / "tokenizer", text_len=TEXT_LEN, device="cpu"
    )
    assert isinstance(from_folder, TextEncoder) and from_folder.dim == 32 and from_folder.text_len == TEXT_LEN
    prompts = [CORPUS[0], CORPUS[2] + " and " + CORPUS[1]]  # the second one is truncated
    a, b = from_folder.encode(prompts), from_pth.encode(prompts)
    assert a.shape == (2, TEXT_LEN, 32) and a.dtype == torch.float32
    assert torch.equal(a, b)


def test_padding_is_zero_and_valid_positions_match_unpadded_run(tiny_umt5):
    encoder = UMT5TextEncoder.from_pretrained(tiny_umt5["root"], text_len=TEXT_LEN, device="cpu")
    prompt = "the   man walks by the river "  # Wan's cleaning collapses the spaces
    out = encoder.encode([prompt])[0]
    ids, mask = encoder.tokenize([prompt])
    length = int(mask.sum())
    assert length == 7  # six words and </s>
    assert torch.equal(out[length:], torch.zeros(TEXT_LEN - length, 32))
    assert out[:length].abs().min() > 0
    with torch.no_grad():
        unpadded = tiny_umt5["model"](input_ids=ids[:, :length]).last_hidden_state[0]
    torch.testing.assert_close(out[:length], unpadded, rtol=1e-5, atol=1e-6)


def test_cache_returns_identical_tensors_without_recomputing(tiny_umt5):
    encoder = UMT5TextEncoder.from_pretrained(tiny_umt5["root"], text_len=TEXT_LEN, device="cpu", cache_size=2)
    calls = []
    encoder.model.register_forward_pre_hook(lambda module, args, kwargs: calls.append(kwargs["input_ids"].shape[0]),
                                            with_kwargs=True)
    first = encoder.encode([CORPUS[0], CORPUS[1]])
    first[0].fill_(7.0)  # the caller owns its copy; the cache must not change
    again = encoder.encode([CORPUS[1], CORPUS[0], CORPUS[1]])
    assert calls == [2]
    assert torch.equal(again[1], encoder.encode([CORPUS[0]])[0]) and torch.equal(again[0], again[2])
    assert not torch.equal(again[1], first[0])
    encoder.encode([CORPUS[2]])  # evicts the least recently used prompt (CORPUS[1])
    assert calls == [2, 1]
    encoder.encode([CORPUS[0]])
    assert calls == [2, 1]
    encoder.encode([CORPUS[1]])
    assert calls == [2, 1, 1]


def test_the_cache_keeps_a_prompts_own_positions_and_gives_back_the_whole_row(tiny_umt5):
    # a long story brings new prompts scene after scene: what the cache holds on the device is their tokens, not
    # text_len rows of zeros (umT5: 4 MiB a prompt in bf16 otherwise)
    encoder = UMT5TextEncoder.from_pretrained(tiny_umt5["root"], text_len=TEXT_LEN, device="cpu", cache_size=4)
    uncached = UMT5TextEncoder.from_pretrained(tiny_umt5["root"], text_len=TEXT_LEN, device="cpu", cache_size=0)
    fresh = encoder.encode(CORPUS[:3])
    lengths = encoder.tokenize(CORPUS[:3])[1].sum(dim=1).tolist()
    assert [encoder._cache[p].shape for p in CORPUS[:3]] == [(n, 32) for n in lengths] and max(lengths) < TEXT_LEN
    again = encoder.encode([CORPUS[2], CORPUS[0], CORPUS[1]])  # all from the cache
    assert torch.equal(again, fresh[[2, 0, 1]]) and torch.equal(again, uncached.encode([CORPUS[2], CORPUS[0], CORPUS[1]]))
    new = "the dog sleeps in the sun"
    mixed = encoder.encode([new, CORPUS[1]])  # one new, one cached
    assert torch.equal(mixed, uncached.encode([new, CORPUS[1]]))
    assert not uncached._cache


def test_bad_checkpoint_names_the_keys(tiny_umt5, tmp_path):
    good = torch.load(tiny_umt5["wan_pth"], weights_only=True)
    tokenizer = tiny_umt5["root"] / "tokenizer"

    def load(state, name):
        path = tmp_path / name
        save_file(state, str(path))
        return UMT5TextEncoder.from_pretrained(path, tokenizer_path=tokenizer, text_len=TEXT_LEN, device="cpu")

    missing = {k: v for k, v in good.items() if k != "blocks.1.ffn.fc2.weight"}
    with pytest.raises(StateDictMismatchError, match=r"1 missing key\(s\): blocks\.1\.ffn\.fc2\.weight"):
        load(missing, "missing.safetensors")
    extra = {**good, "blocks.0.attn.bias": torch.zeros(3)}
    with pytest.raises(StateDictMismatchError, match=r"1 unexpected key\(s\): blocks\.0\.attn\.bias"):
        load(extra, "extra.safetensors")
    wrong = {**good, "blocks.1.attn.k.weight": torch.zeros(40, 32)}
    shape_message = r"1 wrong shape key\(s\): blocks\.1\.attn\.k\.weight \(checkpoint \(40, 32\), model \(32, 32\)\)"
    with pytest.raises(StateDictMismatchError, match=shape_message):
        load(wrong, "wrong.safetensors")


def test_hf_folder_with_missing_weight_is_an_error(tiny_umt5, tmp_path):
    state = {k: v for k, v in tiny_umt5["model"].state_dict().items() if "block.0.layer.0.SelfAttention.k" not in k}
    tiny_umt5["model"].config.save_pretrained(str(tmp_path))
    save_file({k: v.contiguous() for k, v in state.items() if k != "encoder.embed_tokens.weight"},
              str(tmp_path / "model.safetensors"))
    with pytest.raises(StateDictMismatchError, match=r"encoder\.block\.0\.layer\.0\.SelfAttention\.k\.weight"):
        UMT5TextEncoder.from_pretrained(tmp_path, tokenizer_path=tiny_umt5["root"] / "tokenizer", device="cpu")


def test_offload_and_back(tiny_umt5):
    encoder = UMT5TextEncoder.from_pretrained(tiny_umt5["root"], text_len=TEXT_LEN, device="cpu")
    before = encoder.encode(["a dog runs"])
    assert encoder.offload() is encoder and encoder.device.type == "cpu"
    encoder.clear_cache()
    assert torch.equal(encoder.to("cpu").encode(["a dog runs"]), before)


@pytest.fixture(scope="module")
def minilm():
    return MiniLMTextEncoder(text_len=32)


def test_minilm_token_features(minilm):
    prompts = ["a man in a red jacket", "a woman with a green umbrella walks her small dog in the park " * 3]
    out = minilm.encode(prompts)
    assert out.shape == (2, 32, 384) and minilm.dim == 384
    assert int(minilm.tokenizer(prompts[:1], return_tensors="pt").attention_mask.sum()) == 8  # [CLS] 6 words [SEP]
    assert torch.equal(out[0, 8:], torch.zeros(24, 384))
    assert out[0, :8].abs().sum(-1).min() > 0
    assert out[1].abs().sum(-1).min() > 0  # the long prompt is truncated to 32 tokens: no padding


def test_minilm_shares_the_agents_sentence_encoder_weights(minilm):
    """One MiniLM in the process: the embedded model's token encoder runs the weights the entity agent loaded for
    its sentence vectors (the one sentence encoder); moved off the CPU it takes a copy and leaves the agent's."""
    from iamflow.agent import models

    agent = models.sentence_encoder()
    assert minilm.model is agent.model and minilm.tokenizer is agent.tokenizer
    vectors = agent.encode(["a man in a red jacket walks down the street",
                            "a guy wearing a red coat is walking along the road",
                            "a bowl of soup on a wooden kitchen table"])
    similar, dissimilar = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > dissimilar + 0.3
    # the token features are the mean-pooled sentence vector's inputs: pooling them gives the agent's vector
    features = minilm.encode(["a bowl of soup on a wooden kitchen table"])[0]
    pooled = features[features.abs().sum(-1) > 0].mean(0)
    torch.testing.assert_close(torch.nn.functional.normalize(pooled, dim=0), torch.from_numpy(vectors[2]))
    moved = MiniLMTextEncoder(text_len=32).to("meta")
    assert moved.model is not agent.model and next(agent.model.parameters()).device.type == "cpu"
