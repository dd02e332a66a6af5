"""Export the trained model to the Hugging Face folder layout the engine and transformers read.

Owns: config.json (Hub style: rope_theta, no rope_parameters), tokenizer_config.json,
model.safetensors in bf16 (Hub tensor names, per-expert tensors, lm_head tied and not stored),
and the shard files small enough to come back from the GPU machine (<= 15 MiB each), plus the
transformers reload check (same logits as the training code).
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file, load_file

import fim
import model as M


def tokenizer_config():
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": fim.BOS,
        "eos_token": fim.EOS,
        "pad_token": fim.EOS,
        "add_bos_token": True,
        "add_eos_token": False,
        "model_max_length": 2048,
        "clean_up_tokenization_spaces": False,
        "legacy": False,
        "fim_orders": ["psm", "spm"],
        "fim_tokens": {"begin": fim.FIM_BEGIN, "hole": fim.FIM_HOLE, "end": fim.FIM_END},
        "file_separator": fim.FILE_SEP,
    }


def export(model, cfg, tokenizer_path, out_dir, shard_dir=None, shard_bytes=15 * 2**20):
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.to(torch.bfloat16).cpu() for k, v in M.to_hub_state_dict(model).items()}
    save_file(sd, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(), f, indent=2, ensure_ascii=False)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"],
                   "do_sample": False}, f, indent=2)
    shutil.copy(tokenizer_path, os.path.join(out_dir, "tokenizer.json"))
    if shard_dir:
        os.makedirs(shard_dir, exist_ok=True)
        shard, size, k = {}, 0, 0
        names = sorted(sd)
        for i, n in enumerate(names):
            b = sd[n].numel() * 2
            if shard and size + b > shard_bytes:
                save_file(shard, os.path.join(shard_dir, f"shard{k}.safetensors.tmp"))
                os.replace(os.path.join(shard_dir, f"shard{k}.safetensors.tmp"),
                           os.path.join(shard_dir, f"shard{k}.safetensors"))
                shard, size, k = {}, 0, k + 1
            shard[n] = sd[n]
            size += b
        save_file(shard, os.path.join(shard_dir, f"shard{k}.safetensors.tmp"))
        os.replace(os.path.join(shard_dir, f"shard{k}.safetensors.tmp"),
                   os.path.join(shard_dir, f"shard{k}.safetensors"))
    return sd


def load_shards(paths):
    sd = {}
    for p in paths:
        sd.update(load_file(p))
    return sd


@torch.no_grad()
def verify_with_transformers(model_dir, train_model, seqs, device):
    """Load model_dir with AutoModelForCausalLM (fp32) and compare logits with the training code
    holding the same (bf16-rounded) weights in fp32. Returns a dict of error measures."""
    from transformers import AutoModelForCausalLM, AutoConfig
    res = {}
    try:
        try:
            conf = AutoConfig.from_pretrained(model_dir)
        except Exception as e:  # strip the Hub-only extras and retry, recording why
            res["config_retry"] = f"{type(e).__name__}: {e}"[:300]
            cpath = os.path.join(model_dir, "config.json")
            c = json.load(open(cpath))
            for k in ("scoring_func", "aux_loss_alpha", "seq_aux", "moe_layer_freq", "torch_dtype"):
                c.pop(k, None)
            json.dump(c, open(cpath, "w"), indent=2)
            conf = AutoConfig.from_pretrained(model_dir)
        res["hf_config"] = {k: getattr(conf, k, None) for k in (
            "tie_word_embeddings", "head_dim", "q_lora_rank", "n_routed_experts", "num_experts_per_tok",
            "topk_method", "norm_topk_prob", "routed_scaling_factor")}
        res["hf_rope"] = str(getattr(conf, "rope_parameters", None))
        hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    except Exception as e:  # report, never crash the training call
        res["error"] = f"{type(e).__name__}: {e}"
        return res
    ref = M.DeepseekV2LM(train_model.c).to(device)
    sd = load_file(os.path.join(model_dir, "model.safetensors"))
    res["missing_in_train_load"] = M.from_hub_state_dict(ref, sd)
    ref.eval()
    emb = hf.get_input_embeddings().weight
    res["lm_head_tied"] = bool(torch.equal(hf.lm_head.weight, emb))
    worst = 0.0
    for s in seqs:
        ids = torch.as_tensor(s, device=device).long().unsqueeze(0)
        a = hf(ids).logits.float()
        b, _, _ = ref(ids)
        rel = ((a - b).abs().max() / b.abs().max()).item()
        worst = max(worst, rel)
        res.setdefault("argmax_agree", []).append(float((a.argmax(-1) == b.argmax(-1)).float().mean()))
    res["max_rel_err_fp32"] = worst
    del hf
    return res
