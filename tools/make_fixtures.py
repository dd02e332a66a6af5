#!/usr/bin/env python3
"""Parity fixtures for the engine: tiny random-weight models and the logits transformers computes.

Runs on the GPU machine (torch + transformers; the computation itself is float32 on the CPU, eager
attention, so the reference is the plain PyTorch math). For every fixture it writes, under
OUT/models/<name>/:
  config.json              as real Hub checkpoints write it (rope_theta + rope_scaling) or as
                           transformers 5 writes it (rope_parameters), per fixture
  *.safetensors            the weights in HF layout, experts per expert (the Hub layout); one
                           fixture sharded with model.safetensors.index.json, one with fused experts
  reference.safetensors    logits.<i>: [T_i, V] float32 logits at every position of prompt i
  reference.json           prompts (token ids), greedy 32-token continuations, versions

Weights are drawn so that every tensor matters: norm weights around 1 (not exactly 1), biases
non-zero, routers scaled so routing is decisive. Prompts are redrawn until no routing decision and
no greedy argmax is a near tie (a tie would make parity depend on float rounding order).

Usage: make_fixtures.py OUT_DIR [--only NAME,...]
"""
import argparse
import inspect
import json
import math
import os
import shutil
import sys
import time
import traceback

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM

PROMPT_LENGTHS = [5, 37, 333]
GREEDY_PROMPTS = [0, 1]
GREEDY_TOKENS = 32
ROUTE_MARGIN = 1e-4   # smallest allowed log-gap between the last chosen and the first unchosen score
MAX_REDRAWS = 40
ARGMAX_MARGIN = 1e-4  # smallest allowed gap between the best and second-best logit


def fixtures():
    """name -> (config dict as written to config.json, options)."""
    f = {}
    # Our embedded model's architecture: MLA without q_lora, 16 routed experts top-2 greedy,
    # 1 shared expert, first layer dense, plain rope, tied embeddings, bf16 weights, Hub-style config.
    f["dsv2_tiny"] = (dict(
        architectures=["DeepseekV2ForCausalLM"], model_type="deepseek_v2",
        vocab_size=256, hidden_size=64, intermediate_size=96, moe_intermediate_size=24,
        num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
        q_lora_rank=None, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
        n_routed_experts=16, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1,
        topk_method="greedy", norm_topk_prob=False, routed_scaling_factor=1.0,
        max_position_embeddings=1024, rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=None,
        tie_word_embeddings=True, hidden_act="silu", attention_bias=False,
        bos_token_id=1, eos_token_id=2), dict(dtype="bf16", hub_style=True))
    # DeepSeek-V2-Lite-like settings: q_lora set, YaRN with distinct mscale factors, group-limited
    # routing, 2 shared experts, scaling factor; transformers-5 rope_parameters; sharded f32.
    f["dsv2_yarn_group"] = (dict(
        architectures=["DeepseekV2ForCausalLM"], model_type="deepseek_v2",
        vocab_size=192, hidden_size=64, intermediate_size=80, moe_intermediate_size=16,
        num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
        q_lora_rank=24, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=12,
        n_routed_experts=8, num_experts_per_tok=3, n_shared_experts=2, first_k_dense_replace=1,
        topk_method="group_limited_greedy", n_group=4, topk_group=2, norm_topk_prob=False,
        routed_scaling_factor=2.5, max_position_embeddings=512, rms_norm_eps=1e-6,
        rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0,
                             original_max_position_embeddings=128, beta_fast=32, beta_slow=1,
                             mscale=1.0, mscale_all_dim=0.8),
        tie_word_embeddings=False, hidden_act="silu", attention_bias=False,
        bos_token_id=1, eos_token_id=2), dict(dtype="f32", hub_style=False, shard="120KB"))
    f["qwen3_moe_tiny"] = (dict(
        architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe",
        vocab_size=224, hidden_size=48, intermediate_size=64, moe_intermediate_size=24,
        num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        num_experts=8, num_experts_per_tok=2, norm_topk_prob=True, decoder_sparse_step=1,
        mlp_only_layers=[1], max_position_embeddings=1024, rms_norm_eps=1e-6,
        rope_theta=1000000.0, rope_scaling=None, tie_word_embeddings=False, attention_bias=False,
        use_sliding_window=False, hidden_act="silu", bos_token_id=1, eos_token_id=2),
        dict(dtype="f32", hub_style=True))
    f["llama_llama3_tied"] = (dict(
        architectures=["LlamaForCausalLM"], model_type="llama",
        vocab_size=200, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=8, num_key_value_heads=2, head_dim=16, max_position_embeddings=1024,
        rms_norm_eps=1e-5, rope_theta=10000.0,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=64),
        tie_word_embeddings=True, attention_bias=True, mlp_bias=True, hidden_act="silu",
        bos_token_id=1, eos_token_id=2), dict(dtype="f16", hub_style=True))
    f["llama_yarn"] = (dict(
        architectures=["LlamaForCausalLM"], model_type="llama",
        vocab_size=160, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=6, num_key_value_heads=3, max_position_embeddings=512,
        rms_norm_eps=1e-6,
        rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0,
                             original_max_position_embeddings=128),
        tie_word_embeddings=False, attention_bias=False, mlp_bias=False, hidden_act="silu",
        bos_token_id=1, eos_token_id=2), dict(dtype="bf16", hub_style=False))
    f["qwen2_linear"] = (dict(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2",
        vocab_size=176, hidden_size=64, intermediate_size=88, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=dict(type="linear", factor=2.0),
        tie_word_embeddings=False, use_sliding_window=False, hidden_act="silu",
        bos_token_id=1, eos_token_id=2), dict(dtype="f32", hub_style=True))
    f["mixtral_tiny"] = (dict(
        architectures=["MixtralForCausalLM"], model_type="mixtral",
        vocab_size=208, hidden_size=48, intermediate_size=40, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
        max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=1000000.0,
        sliding_window=None, tie_word_embeddings=False, hidden_act="silu",
        bos_token_id=1, eos_token_id=2), dict(dtype="f32", hub_style=True))
    return f


def randomize(model, gen):
    """Every tensor matters: weights ~ N(0, 1/fan_in), norms ~ 1 + N(0, 0.2), biases ~ N(0, 0.1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".gate.weight"):  # MoE routers: decisive routing
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / math.sqrt(p.shape[-1])))
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))


def round_to(model, dtype):
    if dtype == "f32":
        return
    t = torch.bfloat16 if dtype == "bf16" else torch.float16
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(t).float())


class RouteWatch:
    """Records the smallest gap between chosen and unchosen router scores over a forward pass."""

    def __init__(self, model, cfg):
        self.min_gap = float("inf")
        self.cfg = cfg
        self.handles = []
        for name, m in model.named_modules():
            gate = getattr(m, "gate", None)
            if gate is not None and hasattr(m, "experts") and hasattr(gate, "weight"):
                self.handles.append(m.register_forward_pre_hook(self.hook(gate)))

    def hook(self, gate):
        def fn(module, args, kwargs=None):
            x = args[0] if args else kwargs["hidden_states"]
            x = x.reshape(-1, x.shape[-1]).float()
            probs = torch.softmax(x @ gate.weight.float().t(), dim=-1)
            k = self.cfg.get("num_experts_per_tok")
            if self.cfg.get("topk_method") == "group_limited_greedy":
                g, tg = self.cfg["n_group"], self.cfg["topk_group"]
                gs = probs.view(probs.shape[0], g, -1).max(dim=-1).values
                s = gs.sort(dim=-1, descending=True).values
                self.min_gap = min(self.min_gap, (s[:, tg - 1].log() - s[:, tg].log()).min().item())
                top = gs.topk(tg, dim=-1).indices
                mask = torch.zeros_like(gs).scatter_(1, top, 1).bool()
                mask = mask.unsqueeze(-1).expand(-1, g, probs.shape[1] // g).reshape(probs.shape[0], -1)
                probs = probs.masked_fill(~mask, 0.0)
            s = probs.sort(dim=-1, descending=True).values
            self.min_gap = min(self.min_gap, (s[:, k - 1].log() - s[:, k].log()).min().item())
        return fn


def fuse_experts(src_dir, dst_dir):
    """Rewrites a per-expert checkpoint with fused experts: experts.gate_up_proj [E, 2I, D] and
    experts.down_proj [E, D, I] (the layout transformers 5 keeps in memory)."""
    os.makedirs(dst_dir, exist_ok=True)
    tensors = {}
    for fn in sorted(os.listdir(src_dir)):
        if fn.endswith(".safetensors") and not fn.startswith("reference"):
            tensors.update(load_file(os.path.join(src_dir, fn)))
    out, groups = {}, {}
    for k, v in tensors.items():
        parts = k.split(".")
        if "experts" in parts and parts[parts.index("experts") + 1].isdigit():
            i = parts.index("experts")
            prefix = ".".join(parts[: i + 1])
            groups.setdefault(prefix, {}).setdefault(int(parts[i + 1]), {})[parts[i + 2]] = v
        else:
            out[k] = v
    for prefix, experts in groups.items():
        ids = sorted(experts)
        out[prefix + ".gate_up_proj"] = torch.stack(
            [torch.cat([experts[e]["gate_proj"], experts[e]["up_proj"]], dim=0) for e in ids]).contiguous()
        out[prefix + ".down_proj"] = torch.stack([experts[e]["down_proj"] for e in ids]).contiguous()
    save_file(out, os.path.join(dst_dir, "model.safetensors"), metadata={"format": "pt"})
    for fn in ("config.json", "reference.json", "reference.safetensors"):
        shutil.copy(os.path.join(src_dir, fn), os.path.join(dst_dir, fn))


def make_one(name, cfg_dict, opts, out_dir, seed):
    d = os.path.join(out_dir, "models", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as fh:
        json.dump(cfg_dict, fh, indent=2)
    cfg = AutoConfig.from_pretrained(d)
    torch.manual_seed(seed)
    try:
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    except TypeError:
        cfg._attn_implementation = "eager"
        model = AutoModelForCausalLM.from_config(cfg)
    model = model.float().eval()
    try:  # the plain per-expert loop, not a fused grouped-matmul kernel
        model.config._experts_implementation = "eager"
    except Exception:  # noqa: BLE001
        pass
    gen = torch.Generator().manual_seed(seed)
    randomize(model, gen)
    round_to(model, opts["dtype"])
    if cfg_dict.get("tie_word_embeddings"):
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "not tied"
    vocab = cfg_dict["vocab_size"]
    watch = RouteWatch(model, cfg_dict)

    def logits_of(ids):
        with torch.no_grad():
            return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()

    prompts, logits, redraws = [], [], 0
    for n in PROMPT_LENGTHS:
        while True:
            ids = torch.randint(3, vocab, (n,), generator=gen).tolist()
            watch.min_gap = float("inf")
            lg = logits_of(ids)
            if watch.min_gap > ROUTE_MARGIN or redraws >= MAX_REDRAWS:
                break
            redraws += 1
        prompts.append(ids)
        logits.append(lg.contiguous())

    greedy = []
    for pi in GREEDY_PROMPTS:
        seq = list(prompts[pi])
        out = []
        for _ in range(GREEDY_TOKENS):
            watch.min_gap = float("inf")
            last = logits_of(seq)[-1]
            top2 = last.topk(2).values
            ok = (top2[0] - top2[1]).item() > ARGMAX_MARGIN and watch.min_gap > ROUTE_MARGIN
            tok = int(last.argmax())
            if not ok:
                break  # stop at a near tie: the tokens before it are still exact
            seq.append(tok)
            out.append(tok)
        greedy.append(dict(prompt=pi, tokens=out))

    save_kwargs = {}
    if opts.get("shard"):
        save_kwargs["max_shard_size"] = opts["shard"]
    to_save = model
    if opts["dtype"] == "bf16":
        to_save = model.to(torch.bfloat16)
    elif opts["dtype"] == "f16":
        to_save = model.to(torch.float16)
    to_save.save_pretrained(d, **save_kwargs)
    for extra in ("generation_config.json",):
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)
    if opts.get("hub_style"):
        with open(os.path.join(d, "config.json"), "w") as fh:
            json.dump(cfg_dict, fh, indent=2)
    save_file({f"logits.{i}": l for i, l in enumerate(logits)}, os.path.join(d, "reference.safetensors"))
    ref = dict(prompts=prompts, greedy=greedy, min_route_log_gap=None if math.isinf(watch.min_gap) else watch.min_gap, torch=torch.__version__,
               transformers=transformers.__version__, dtype=opts["dtype"], redraws=redraws,
               note="logits.<i> in reference.safetensors: float32 [len(prompts[i]), vocab_size]")
    with open(os.path.join(d, "reference.json"), "w") as fh:
        json.dump(ref, fh)
    return d, [len(g["tokens"]) for g in greedy], redraws


def dump_sources(out_dir):
    """The exact reference code this transformers version runs, for reading beside the fixtures."""
    import importlib
    src = os.path.join(out_dir, "sources")
    os.makedirs(src, exist_ok=True)
    mods = ["transformers.modeling_rope_utils"] + [
        f"transformers.models.{m}.modeling_{m}" for m in ("deepseek_v2", "qwen3_moe", "llama", "qwen2", "mixtral")] + [
        f"transformers.models.{m}.configuration_{m}" for m in ("deepseek_v2", "qwen3_moe", "llama", "qwen2", "mixtral")]
    for m in mods + ["transformers.integrations.moe", "transformers.conversion_mapping"]:
        try:
            mod = importlib.import_module(m)
            shutil.copy(inspect.getsourcefile(mod), os.path.join(src, m.split(".")[-1] + ".py"))
        except Exception as e:  # noqa: BLE001
            print("source", m, "not copied:", e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    only = set(filter(None, args.only.split(",")))
    failed = []
    try:
        dump_sources(args.out)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
    for i, (name, (cfg, opts)) in enumerate(fixtures().items()):
        if only and name not in only:
            continue
        t0 = time.time()
        try:
            d, greedy_lens, redraws = make_one(name, cfg, opts, args.out, 1000 + i)
            size = sum(os.path.getsize(os.path.join(d, fn)) for fn in os.listdir(d))
            print(f"{name}: ok in {time.time() - t0:.1f}s, greedy {greedy_lens}, redraws {redraws}, {size} bytes, files {sorted(os.listdir(d))}")
            if name == "dsv2_yarn_group":
                fuse_experts(d, os.path.join(args.out, "models", "dsv2_fused_experts"))
                print("dsv2_fused_experts: ok")
        except Exception:  # noqa: BLE001
            failed.append(name)
            print(f"{name}: FAILED")
            traceback.print_exc()
    with open(os.path.join(args.out, "tensor_names.txt"), "w") as fh:
        for root, _, files in os.walk(os.path.join(args.out, "models")):
            for fn in sorted(files):
                if fn.endswith(".safetensors") and not fn.startswith("reference"):
                    for k, v in sorted(load_file(os.path.join(root, fn)).items()):
                        fh.write(f"{os.path.basename(root)}/{fn} {k} {list(v.shape)} {v.dtype}\n")
    print("failed:", failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
