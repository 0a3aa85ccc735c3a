#!/usr/bin/env python3
"""Generate tiny random-weight GGUF chat models and transformers' logits for tarjama's decoder tests.

Run from the repository root:

    /work/venv/fx/bin/python scripts/make-gguf-model-fixtures.py [--shared ../shared/data]

Pinned versions (the script refuses others unless --any-version is given):

    python        3.11.7
    torch         2.15.0   (CPU only, 1 thread, float32, eager attention)
    transformers  5.24.0
    tokenizers    0.23.3   (trains the tiny byte-level BPE vocabulary)
    gguf          0.19.0   (writes the files; transformers' GGUF loader reads them back with it)
    numpy         2.4.6
    accelerate    1.15.0   (transformers requires it to load a GGUF)

Outputs, in tests/fixtures/gguf-tiny/ (about 2 MB in all):

    qwen2.gguf qwen3.gguf llama.gguf   one model per GGUF architecture tarjama's decoder runs
    reference.json                     transformers' logits and greedy generations for them
    README.md                          what this is (written by hand, not by this script)

Each model is built with transformers (Qwen2ForCausalLM, Qwen3ForCausalLM, LlamaForCausalLM:
vocab 512, hidden 64, 2 layers, 4 query heads over 2 key/value heads), given random weights big
enough that attention is far from uniform and norm weights are not ones, and written as a GGUF
the way llama.cpp's convert_hf_to_gguf.py (`--outtype f32`) writes it:

  * metadata: general.architecture/type/name/file_type (0 = ALL_F32)/quantization_version,
    {arch}.context_length, embedding_length, block_count, feed_forward_length,
    attention.head_count, attention.head_count_kv, attention.layer_norm_rms_epsilon,
    rope.freq_base; attention.key_length and value_length only when the HF config has a
    `head_dim` (the converter's rule: qwen3 and llama here, not qwen2); llama also gets
    llama.vocab_size and llama.rope.dimension_count (LlamaModel.set_gguf_parameters);
  * a real byte-level BPE tokenizer (tokenizer.ggml.model "gpt2", pre "qwen2" or "llama-bpe",
    tokens, token_type, merges, bos/eos/padding ids, add_bos_token, a minimal chat template),
    trained on ../shared/data/ntrex/en.txt; its special tokens are the last ids of the vocabulary;
  * tensors in HF [out, in] numpy layout passed to GGUFWriter.add_tensor (GGUF stores the dims
    reversed), all float32; `output.weight` is absent when the embeddings are tied (qwen2);
  * llama only: q and k rows permuted as LlamaModel.permute does, because GGML's llama rope
    rotates adjacent pairs while HF's rotates the first half against the second. qwen2/qwen3
    are not permuted (GGML runs them with the "neox" rope, which is HF's).

Each file is checked twice, independently of the model that wrote it:
  * a float64 numpy forward pass that reads only the GGUF and runs it as llama.cpp does (adjacent-
    pair rope for llama, "neox" halves for qwen2/qwen3, head_dim from attention.key_length) must
    reproduce every recorded logit (GgmlStyleModel);
  * `AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)` (which un-permutes llama's q/k)
    must give the original model's logits. transformers 5.24's qwen3 table maps no
    `attention.key_length`, so the config it reads from qwen3.gguf has Qwen3Config's default
    head_dim 128 instead of 32; that model is loaded with the original config passed (only the
    tensors then come from the file). A llama file written without the permutation is loaded too,
    to show that this check would catch it.

Reference cases (reference.json), per model, all from the original HF model in float32:
  last_logits    logits of the last position for prompts of 1, 7 and 40 ids;
  incremental    a 12-id prompt then 3 single ids fed one at a time with the KV cache
                 (use_cache=True, as generate does): logits after the prompt and each step;
  prefix_reuse   prompt A (20 ids), then prompt B sharing A's first 15 ids and then differing
                 (23 ids), each computed from scratch: what a cache cut back to 15 must give;
  greedy         generate(do_sample=False, max_new_tokens=10) from a 9-id prompt, EOS disabled,
                 with the logits of each of the 10 steps.
Floats are written as the shortest decimal that reads back as the same float32. `checks` in
reference.json records the checks above and the float32 noise of the reference itself (its
distance to the same model run in float64), which sizes a test's tolerance.

Determinism: torch and numpy are seeded, torch uses deterministic algorithms on 1 thread, BPE
training is deterministic. Reruns on the same machine give identical files.
"""

import argparse
import copy
import json
import os
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import fixture_common  # noqa: E402  (scripts/fixture_common.py)

PINNED = {"torch": "2.15.0", "transformers": "5.24.0", "tokenizers": "0.23.3", "gguf": "0.19.0", "numpy": "2.4.6",
          "accelerate": "1.15.0"}
SEED = 20261201
REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "tests/fixtures/gguf-tiny"

VOCAB = 512
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    rms_norm_eps=1e-6,
    max_position_embeddings=256,
)

# Special tokens by family, as the real models name them; they take the last ids of the vocabulary.
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
LLAMA_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

MODELS = {
    "qwen2": dict(
        hf_class="Qwen2ForCausalLM", rope_theta=50000.0, tie_word_embeddings=True, extra={},
        specials=QWEN_SPECIALS, bos="<|endoftext|>", eos="<|im_end|>", pad="<|endoftext|>",
        add_bos=False, pre="qwen2", template=CHATML,
    ),
    "qwen3": dict(
        hf_class="Qwen3ForCausalLM", rope_theta=30000.0, tie_word_embeddings=False, extra={"head_dim": 32},
        specials=QWEN_SPECIALS, bos="<|endoftext|>", eos="<|im_end|>", pad="<|endoftext|>",
        add_bos=False, pre="qwen2", template=CHATML,
    ),
    "llama": dict(
        hf_class="LlamaForCausalLM", rope_theta=70000.0, tie_word_embeddings=False, extra={},
        specials=LLAMA_SPECIALS, bos="<|begin_of_text|>", eos="<|eot_id|>", pad="<|end_of_text|>",
        add_bos=True, pre="llama-bpe", template=LLAMA3_TEMPLATE,
    ),
}

# Standard deviations of the random weights (see init_weights).
STD_EMBED = 0.3
STD_LINEAR = 0.15
STD_QK = 0.2  # a little larger for q and k, so attention is far from uniform
STD_BIAS = 0.2
NORM_RANGE = (0.5, 1.5)

GGUF_TENSOR = {  # HF name inside a layer -> GGUF name inside blk.N
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


# --------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------


def train_bpe(shared: pathlib.Path, n_tokens: int) -> tuple[list[str], list[str]]:
    """A byte-level BPE of `n_tokens` tokens (256 byte symbols + merges): (tokens by id, merges)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    lines = [line for line in (shared / "ntrex/en.txt").read_text(encoding="utf-8").split("\n") if line.strip()]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=n_tokens, min_frequency=2, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[],
    )
    tok.train_from_iterator(lines, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = model["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    if [vocab[t] for t in tokens] != list(range(len(tokens))) or len(tokens) != n_tokens:
        sys.exit(f"BPE training gave {len(tokens)} tokens with gaps; wanted {n_tokens}")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    if len(merges) != n_tokens - 256:
        sys.exit(f"BPE training gave {len(merges)} merges for {n_tokens} tokens")
    return tokens, merges


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------


def build_model(arch: str, spec: dict, seed: int, special_ids: dict):
    import torch
    import transformers

    cls = getattr(transformers, spec["hf_class"])
    config = cls.config_class(
        **COMMON,
        **spec["extra"],
        rope_parameters={"rope_type": "default", "rope_theta": spec["rope_theta"]},
        tie_word_embeddings=spec["tie_word_embeddings"],
        bos_token_id=special_ids["bos"],
        eos_token_id=special_ids["eos"],
        pad_token_id=special_ids["pad"],
        attn_implementation="eager",
    )
    torch.manual_seed(seed)
    model = cls(config).to(torch.float32).eval()
    init_weights(model, seed)
    if spec["tie_word_embeddings"]:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "not tied"
    return model


def init_weights(model, seed: int) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):  # tied weights appear once
            if name.endswith("norm.weight"):
                lo, hi = NORM_RANGE
                p.copy_(lo + (hi - lo) * torch.rand(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * STD_BIAS)
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * STD_EMBED)
            elif name.endswith(("q_proj.weight", "k_proj.weight")):
                p.copy_(torch.randn(p.shape, generator=gen) * STD_QK)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * STD_LINEAR)


def llama_permute(w, n_head: int, n_head_kv: int | None):
    """llama.cpp's LlamaModel.permute (convert_hf_to_gguf.py)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensors(arch: str, model, permute: bool = True) -> dict:
    """GGUF tensor name -> float32 numpy array in HF [out, in] layout, as the converter passes them."""
    import numpy as np

    cfg = model.config
    out = {}
    for name, p in model.state_dict().items():
        w = p.detach().cpu().numpy().astype(np.float32)
        if name == "model.embed_tokens.weight":
            out["token_embd.weight"] = w
        elif name == "model.norm.weight":
            out["output_norm.weight"] = w
        elif name == "lm_head.weight":
            if not cfg.tie_word_embeddings:
                out["output.weight"] = w
        elif name.startswith("model.layers."):
            _, _, bid, rest = name.split(".", 3)
            if not permute:
                pass
            elif arch == "llama" and rest == "self_attn.q_proj.weight":
                w = llama_permute(w, cfg.num_attention_heads, cfg.num_attention_heads)
            elif arch == "llama" and rest == "self_attn.k_proj.weight":
                w = llama_permute(w, cfg.num_attention_heads, cfg.num_key_value_heads)
            out[f"blk.{bid}.{GGUF_TENSOR[rest]}"] = np.ascontiguousarray(w)
        else:
            sys.exit(f"unexpected parameter {name}")
    return out


def write_gguf(path: pathlib.Path, arch: str, spec: dict, model, tokens, toktypes, merges, special_ids,
               permute: bool = True) -> dict:
    import gguf

    cfg = model.config
    hf_config = cfg.to_dict()
    w = gguf.GGUFWriter(str(path), arch)  # writes general.architecture
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(f"tarjama tiny {arch}")
    # TextModel.set_gguf_parameters
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(spec["rope_theta"])
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    if hf_config.get("head_dim") is not None:
        w.add_key_length(hf_config["head_dim"])
        w.add_value_length(hf_config["head_dim"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    if arch == "llama":  # LlamaModel.set_gguf_parameters
        w.add_vocab_size(cfg.vocab_size)
        w.add_rope_dimension_count(hf_config.get("head_dim") or cfg.hidden_size // cfg.num_attention_heads)
    # TextModel._set_vocab_gpt2 + SpecialVocab.add_to_gguf
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(spec["pre"])
    w.add_token_list(tokens)
    w.add_token_types(toktypes)
    w.add_token_merges(merges)
    w.add_bos_token_id(special_ids["bos"])
    w.add_eos_token_id(special_ids["eos"])
    w.add_pad_token_id(special_ids["pad"])
    w.add_add_bos_token(spec["add_bos"])
    w.add_chat_template(spec["template"])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    tensors = gguf_tensors(arch, model, permute)
    for name, t in tensors.items():
        w.add_tensor(name, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


def check_gguf(path: pathlib.Path, tensors: dict) -> None:
    """The file holds exactly these float32 tensors, with GGUF's reversed dims."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(path))
    found = {t.name: t for t in reader.tensors}
    if set(found) != set(tensors):
        sys.exit(f"{path.name}: tensors {sorted(set(found) ^ set(tensors))} differ")
    for name, t in found.items():
        if t.tensor_type != gguf.GGMLQuantizationType.F32:
            sys.exit(f"{path.name}: {name} is {t.tensor_type.name}, not F32")
        if list(t.shape) != list(reversed(tensors[name].shape)):
            sys.exit(f"{path.name}: {name} has dims {list(t.shape)} for {tensors[name].shape}")
        if not np.array_equal(np.asarray(t.data).reshape(tensors[name].shape), tensors[name]):
            sys.exit(f"{path.name}: {name} does not read back")


# --------------------------------------------------------------------------
# reference cases
# --------------------------------------------------------------------------


def f32_list(t) -> list[float]:
    """Float32 values as the shortest decimals that read back as the same float32."""
    import numpy as np

    return [float(str(x)) for x in np.asarray(t.detach().cpu(), dtype=np.float32).reshape(-1)]


def last_logits(model, ids: list[int]):
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids]), use_cache=False).logits[0, -1]


def reference_cases(model, rng, n_normal: int) -> tuple[dict, dict]:
    import torch

    def ids(n):
        return [int(x) for x in rng.integers(0, n_normal, size=n)]

    cases, checks = {}, {}
    recorded = []  # (ids the logits follow, logits): checked against a float64 run below

    def record(context, logits):
        recorded.append((list(context), logits))
        return f32_list(logits)

    cases["last_logits"] = [{"input_ids": p, "logits": record(p, last_logits(model, p))} for p in (ids(1), ids(7), ids(40))]

    prompt, steps = ids(12), ids(3)
    with torch.no_grad():
        out = model(torch.tensor([prompt]), use_cache=True)
        logits = [out.logits[0, -1]]
        cache = out.past_key_values
        for tok in steps:
            out = model(torch.tensor([[tok]]), past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            logits.append(out.logits[0, -1])
    full = [last_logits(model, prompt + steps[:i]) for i in range(len(steps) + 1)]
    checks["incremental_vs_full"] = max(float((a - b).abs().max()) for a, b in zip(logits, full))
    cases["incremental"] = {
        "prompt": prompt, "steps": steps,
        "logits": [record(prompt + steps[:i], x) for i, x in enumerate(logits)],
    }

    a = ids(20)
    b = a[:15] + ids(8)
    while b[15] == a[15]:
        b[15] = (b[15] + 1) % n_normal
    cases["prefix_reuse"] = {
        "common_prefix": 15,
        "a": {"input_ids": a, "logits": record(a, last_logits(model, a))},
        "b": {"input_ids": b, "logits": record(b, last_logits(model, b))},
    }

    prompt = ids(9)
    with torch.no_grad():
        gen = model.generate(
            torch.tensor([prompt]), do_sample=False, max_new_tokens=10, eos_token_id=None,
            pad_token_id=model.config.pad_token_id, return_dict_in_generate=True, output_logits=True,
        )
    seq = gen.sequences[0].tolist()
    new = seq[len(prompt):]
    if seq[: len(prompt)] != prompt or len(new) != 10:
        sys.exit(f"generate gave {seq} for {prompt}")
    step_logits = [x[0] for x in gen.logits]
    if [int(x.argmax()) for x in step_logits] != new:
        sys.exit("generate's tokens are not the argmax of its logits")
    # The same steps recomputed without a cache.
    checks["greedy_vs_full"] = max(
        float((x - last_logits(model, prompt + new[:i])).abs().max()) for i, x in enumerate(step_logits)
    )
    # A Rust run must pick the same tokens: how far the winner is ahead of the runner-up.
    checks["greedy_min_margin"] = min(float(x.topk(2).values[0] - x.topk(2).values[1]) for x in step_logits)
    cases["greedy"] = {
        "input_ids": prompt, "max_new_tokens": 10, "generated_ids": new,
        "step_logits": [record(prompt + new[:i], x) for i, x in enumerate(step_logits)],
    }
    # The float32 error of the reference itself: the same model in float64, without a cache.
    m64 = copy.deepcopy(model).to(torch.float64)
    checks["float32_vs_float64"] = max(
        float((x.double() - last_logits(m64, context)).abs().max()) for context, x in recorded
    )
    checks["recorded"] = recorded
    return cases, checks


def diagnostics(model, ids: list[int]) -> dict:
    """How far from degenerate the random model is: logit spread and attention sharpness."""
    import torch

    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True, use_cache=False)
    attn = torch.stack(out.attentions)  # [layers, 1, heads, t, t]
    t = attn.shape[-1]
    # Rows past the first few, where uniform attention would give at most 1/(i+1).
    rows = attn[..., 8:, :]
    return {
        "logits_std": round(float(out.logits[0, -1].std()), 3),
        "mean_max_attention": round(float(rows.max(-1).values.mean()), 3),
        "uniform_would_be": round(float(sum(1 / (i + 1) for i in range(8, t)) / (t - 8)), 3),
    }


def roundtrip(arch: str, path: pathlib.Path, model, prompts: list[list[int]]) -> tuple[float, str]:
    """Max |logits| difference between the original model and the GGUF loaded by transformers."""
    import numpy as np
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    kwargs = dict(gguf_file=path.name, dtype=torch.float32, attn_implementation="eager")
    lc, oc = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name), model.config
    mismatch = [f"{k}={getattr(lc, k, None)} (want {getattr(oc, k, None)})"
                for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                          "intermediate_size", "max_position_embeddings", "tie_word_embeddings", "vocab_size",
                          "head_dim", "bos_token_id", "eos_token_id")
                if getattr(lc, k, None) != getattr(oc, k, None)]
    if np.float32(lc.rms_norm_eps) != np.float32(oc.rms_norm_eps):  # GGUF stores it as float32
        mismatch.append(f"rms_norm_eps={lc.rms_norm_eps} (want {oc.rms_norm_eps})")
    if lc.rope_parameters.get("rope_theta") != oc.rope_parameters.get("rope_theta"):
        mismatch.append(f"rope_theta={lc.rope_parameters.get('rope_theta')} (want {oc.rope_parameters['rope_theta']})")
    if not mismatch:
        note = "loaded from the GGUF alone"
        loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), **kwargs).eval()
    else:
        note = (f"the config transformers reads from the GGUF has {', '.join(mismatch)}; "
                "loaded with the original config passed, tensors from the GGUF")
        loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), config=oc, **kwargs).eval()
    worst = 0.0
    for ids in prompts:
        worst = max(worst, float((last_logits(loaded, ids) - last_logits(model, ids)).abs().max()))
        with torch.no_grad():
            full_a = loaded(torch.tensor([ids]), use_cache=False).logits
            full_b = model(torch.tensor([ids]), use_cache=False).logits
        worst = max(worst, float((full_a - full_b).abs().max()))
    return worst, note


class GgmlStyleModel:
    """The decoder as llama.cpp (and tarjama's src/models/gguf/decoder.rs) runs it, in float64 numpy,
    reading only the GGUF: rope on adjacent pairs for llama, on halves ("neox") for qwen2/qwen3,
    head_dim from attention.key_length when present. Checks the files without transformers' loader."""

    def __init__(self, path: pathlib.Path):
        import gguf
        import numpy as np

        reader = gguf.GGUFReader(str(path))
        meta = {k: f.contents() for k, f in reader.fields.items()}
        self.arch = arch = meta["general.architecture"]
        self.t = {t.name: np.asarray(t.data, dtype=np.float64).reshape(list(reversed([int(d) for d in t.shape])))
                  for t in reader.tensors}
        self.heads = meta[f"{arch}.attention.head_count"]
        self.kv_heads = meta[f"{arch}.attention.head_count_kv"]
        self.dim = meta.get(f"{arch}.attention.key_length", meta[f"{arch}.embedding_length"] // self.heads)
        self.eps = meta[f"{arch}.attention.layer_norm_rms_epsilon"]
        self.base = meta[f"{arch}.rope.freq_base"]
        self.layers = meta[f"{arch}.block_count"]

    def rms(self, x, name):
        import numpy as np

        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * self.t[name]

    def rope(self, x):  # x: [t, heads, dim]
        import numpy as np

        d = self.dim
        angle = np.arange(x.shape[0])[:, None] * (1.0 / self.base ** (np.arange(0, d, 2) / d))[None, :]
        cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
        out = np.empty_like(x)
        if self.arch == "llama":  # GGML_ROPE_TYPE_NORM: adjacent pairs
            a, b = x[..., 0::2], x[..., 1::2]
            out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        else:  # GGML_ROPE_TYPE_NEOX: first half with second half
            a, b = x[..., : d // 2], x[..., d // 2 :]
            out[..., : d // 2], out[..., d // 2 :] = a * cos - b * sin, a * sin + b * cos
        return out

    def linear(self, x, name):
        y = x @ self.t[f"{name}.weight"].T
        return y + self.t[f"{name}.bias"] if f"{name}.bias" in self.t else y

    def last_logits(self, ids: list[int]):
        import numpy as np

        n, d, groups = len(ids), self.dim, self.heads // self.kv_heads
        x = self.t["token_embd.weight"][ids]
        mask = np.triu(np.full((n, n), -np.inf), 1)
        for i in range(self.layers):
            p = f"blk.{i}"
            h = self.rms(x, f"{p}.attn_norm.weight")
            q = self.linear(h, f"{p}.attn_q").reshape(n, self.heads, d)
            k = self.linear(h, f"{p}.attn_k").reshape(n, self.kv_heads, d)
            v = self.linear(h, f"{p}.attn_v").reshape(n, self.kv_heads, d)
            if f"{p}.attn_q_norm.weight" in self.t:
                q, k = self.rms(q, f"{p}.attn_q_norm.weight"), self.rms(k, f"{p}.attn_k_norm.weight")
            q, k = self.rope(q), self.rope(k)
            k, v = np.repeat(k, groups, axis=1), np.repeat(v, groups, axis=1)
            scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(d) + mask
            probs = np.exp(scores - scores.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            attn = np.einsum("hqk,khd->qhd", probs, v).reshape(n, self.heads * d)
            x = x + self.linear(attn, f"{p}.attn_output")
            h = self.rms(x, f"{p}.ffn_norm.weight")
            gate = self.linear(h, f"{p}.ffn_gate")
            x = x + self.linear(gate / (1 + np.exp(-gate)) * self.linear(h, f"{p}.ffn_up"), f"{p}.ffn_down")
        out = self.t.get("output.weight", self.t["token_embd.weight"])
        return self.rms(x[-1], "output_norm.weight") @ out.T


def tokenizer_sample(path: pathlib.Path, text: str) -> dict:
    """What transformers' GGUF tokenizer makes of the file's vocabulary (a validity check)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return {"text": text, "ids": tok(text)["input_ids"], "ids_no_special": tok(text, add_special_tokens=False)["input_ids"]}


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=pathlib.Path, default=REPO.parent / "shared/data")
    parser.add_argument("--any-version", action="store_true")
    args = parser.parse_args()
    versions = fixture_common.check_versions(PINNED, args.any_version)

    import numpy as np
    import transformers

    fixture_common.seed_everything(SEED, 1)
    transformers.logging.set_verbosity_error()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    OUT.mkdir(parents=True, exist_ok=True)

    ref = {
        "generator": {"script": "scripts/make-gguf-model-fixtures.py", "seed": SEED, "versions": versions},
        "models": {},
    }
    bpe_cache: dict[int, tuple[list[str], list[str]]] = {}
    for index, (arch, spec) in enumerate(MODELS.items()):
        seed = SEED + 1000 * index
        n_normal = VOCAB - len(spec["specials"])
        if n_normal not in bpe_cache:
            bpe_cache[n_normal] = train_bpe(args.shared, n_normal)
        normal, merges = bpe_cache[n_normal]
        tokens = normal + spec["specials"]
        toktypes = [1] * len(normal) + [3] * len(spec["specials"])  # NORMAL, CONTROL
        special_ids = {k: tokens.index(spec[k]) for k in ("bos", "eos", "pad")}

        model = build_model(arch, spec, seed, special_ids)
        path = OUT / f"{arch}.gguf"
        tensors = write_gguf(path, arch, spec, model, tokens, toktypes, merges, special_ids)
        check_gguf(path, tensors)

        rng = np.random.default_rng(seed)
        cases, checks = reference_cases(model, rng, n_normal)
        prompts = [c["input_ids"] for c in cases["last_logits"]] + [cases["prefix_reuse"]["b"]["input_ids"]]
        ggml = GgmlStyleModel(path)
        ggml_diff = max(float(np.abs(ggml.last_logits(context) - x.double().numpy()).max())
                        for context, x in checks.pop("recorded"))
        if ggml_diff > 1e-4:
            sys.exit(f"{arch}: a GGML-style forward pass over the GGUF is off by {ggml_diff}")
        diff, note = roundtrip(arch, path, model, prompts)
        if diff > 1e-4:
            sys.exit(f"{arch}: transformers reads the GGUF back with logits off by {diff}")
        unpermuted = None
        if arch == "llama":
            # The check has teeth: without the converter's q/k permutation the logits are far off.
            with tempfile.TemporaryDirectory() as tmp:
                bad = pathlib.Path(tmp) / path.name
                write_gguf(bad, arch, spec, model, tokens, toktypes, merges, special_ids, permute=False)
                unpermuted, _ = roundtrip(arch, bad, model, prompts)
            if unpermuted < 1e-2:
                sys.exit(f"llama: an unpermuted file reads back almost the same ({unpermuted}); the check is blind")
        try:
            tok = tokenizer_sample(path, "The weather today is nice, isn't it?")
        except Exception as e:  # noqa: BLE001
            tok = {"error": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"}
        cfg = model.config
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        ref["models"][arch] = {
            "file": path.name,
            "sha256": fixture_common.sha256(path),
            "hf_class": spec["hf_class"],
            "config": {
                "architecture": arch,
                "vocab_size": cfg.vocab_size,
                "hidden_size": cfg.hidden_size,
                "num_hidden_layers": cfg.num_hidden_layers,
                "num_attention_heads": cfg.num_attention_heads,
                "num_key_value_heads": cfg.num_key_value_heads,
                "head_dim": head_dim,
                "intermediate_size": cfg.intermediate_size,
                "rope_theta": spec["rope_theta"],
                "rms_norm_eps": cfg.rms_norm_eps,
                "context_length": cfg.max_position_embeddings,
                "tie_word_embeddings": cfg.tie_word_embeddings,
                "qkv_bias": arch == "qwen2",
                "qk_norm": arch == "qwen3",
                "key_length_in_gguf": "head_dim" in cfg.to_dict() and cfg.to_dict()["head_dim"] is not None,
                "qk_rows_permuted": arch == "llama",
                "bos_token_id": special_ids["bos"],
                "eos_token_id": special_ids["eos"],
                "pad_token_id": special_ids["pad"],
                "add_bos_token": spec["add_bos"],
                "tokenizer_pre": spec["pre"],
                "special_tokens": {t: tokens.index(t) for t in spec["specials"]},
            },
            "checks": {
                "roundtrip_max_abs_diff": diff,
                "roundtrip_load": note,
                **({"roundtrip_unpermuted_llama_max_abs_diff": unpermuted} if unpermuted is not None else {}),
                "float32_vs_float64_max_abs_diff": checks["float32_vs_float64"],
                "ggml_style_numpy_float64_max_abs_diff": ggml_diff,
                "incremental_vs_full_max_abs_diff": checks["incremental_vs_full"],
                "greedy_vs_full_max_abs_diff": checks["greedy_vs_full"],
                "greedy_min_top2_margin": checks["greedy_min_margin"],
                **diagnostics(model, cases["last_logits"][2]["input_ids"]),
            },
            "tokenizer_sample": tok,
            **cases,
        }
        print(f"{arch}: {path.stat().st_size} bytes, {len(tensors)} tensors; round trip max |diff| {diff:.3g} "
              f"({note}); incremental vs full {checks['incremental_vs_full']:.3g}; "
              f"greedy {cases['greedy']['generated_ids']}; {ref['models'][arch]['checks']}")

    fixture_common.write_text(OUT / "reference.json", fixture_common.dumps_indented(ref, numbers_inline=True))
    total = sum(p.stat().st_size for p in OUT.iterdir() if p.is_file())
    print(f"wrote {OUT.relative_to(REPO)}: {total} bytes in all")


if __name__ == "__main__":
    main()
