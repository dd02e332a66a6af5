"""Write models/ghostline-coder-tiny/README.md (the model card) from the run's records.

Owns: turning tools/train/runs/<run>/train_log.jsonl, stats.json and .traindata/manifest.json
into the card: data, budget, architecture, training curve, expert utilisation, evaluation, licences.
Usage: make_card.py RUN_DIR MODEL_DIR [--gpu-seconds N] [--ghostline-eval FILE.json]
"""
import argparse
import json
import os


def rows(path):
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("model")
    ap.add_argument("--gpu-seconds", default="?")
    ap.add_argument("--ghostline-eval", default="")
    a = ap.parse_args()
    log = rows(os.path.join(a.run, "train_log.jsonl"))
    stats = json.load(open(os.path.join(a.run, "stats.json"))) if os.path.exists(os.path.join(a.run, "stats.json")) else {}
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    kinds = {}
    for r in log:
        kinds.setdefault(r["kind"], []).append(r)
    start = kinds.get("start", [{}])[-1]
    end = kinds.get("end_train", [{}])
    tokens = sum(e.get("tokens", 0) for e in end)
    secs = sum(e.get("seconds", 0) for e in end)
    size = sum(os.path.getsize(os.path.join(a.model, f)) for f in os.listdir(a.model))
    L = []
    w = L.append
    w("---\nlicense: apache-2.0\nlibrary_name: transformers\npipeline_tag: text-generation\ntags: [code, fill-in-the-middle, deepseek_v2, moe]\n---\n")
    w("# ghostline-coder-tiny\n")
    w("Ghostline's embedded default code-completion model: a tiny DeepSeek-V2-architecture (`deepseek_v2`) "
      "mixture-of-experts model trained from scratch for fill-in-the-middle completion of the rest of a line. "
      "It is small enough to ship in the repository and run on any CPU; it is a fallback that completes "
      "common code patterns, not a substitute for a real code model.\n")
    w("## Architecture\n")
    w(f"- {start.get('params', 0)/1e6:.2f}M parameters (embedding tied with the LM head; the LM head is not stored separately), "
      f"stored in bf16; folder size {size/2**20:.1f} MiB.")
    w(f"- {cfg['num_hidden_layers']} layers, hidden {cfg['hidden_size']}, {cfg['num_attention_heads']} heads, vocabulary {cfg['vocab_size']}, context {cfg['max_position_embeddings']}.")
    w(f"- MLA attention: q_lora_rank null, kv_lora_rank {cfg['kv_lora_rank']}, qk_nope {cfg['qk_nope_head_dim']}, qk_rope {cfg['qk_rope_head_dim']}, v_head {cfg['v_head_dim']}; plain RoPE, rope_theta {cfg['rope_theta']} (interleaved pairs, transformers 5 semantics); softmax scale (qk_nope+qk_rope)^-0.5.")
    w(f"- DeepSeekMoE: first {cfg['first_k_dense_replace']} layer dense (intermediate {cfg['intermediate_size']}), then {cfg['n_routed_experts']} routed experts (intermediate {cfg['moe_intermediate_size']}), top-{cfg['num_experts_per_tok']}, softmax gating, greedy top-k, weights not renormalised, routed_scaling_factor {cfg['routed_scaling_factor']}, {cfg['n_shared_experts']} shared expert.")
    w(f"- Tokenizer: byte-level BPE ({cfg['vocab_size']} entries) trained on the corpus with HF `tokenizers`; DeepSeek-Coder special tokens "
      "`<｜begin▁of▁sentence｜>`, `<｜end▁of▁sentence｜>`, `<｜fim▁begin｜>`, `<｜fim▁hole｜>`, `<｜fim▁end｜>`, plus `<｜file▁sep｜>`.\n")
    w("## Prompt format\n")
    w("```\nSPM: <｜begin▁of▁sentence｜><｜fim▁hole｜>{suffix}<｜fim▁begin｜>{prefix}<｜fim▁end｜>  -> {middle}<｜end▁of▁sentence｜>\n"
      "PSM: <｜begin▁of▁sentence｜><｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>  -> {middle}<｜end▁of▁sentence｜>\n```\n"
      "Prefix, suffix and middle are tokenized separately. Trained with FIM rate 0.8, 60% of FIM examples SPM. SPM is the better order for this model (see evaluation).\n")
    w("## Training\n")
    w(f"- {tokens/1e6:.0f}M tokens in {secs:.0f} s of training on one H200 (bf16 autocast, AdamW, warmup + cosine over the wall-clock budget, "
      f"DeepSeekMoE expert-level balance loss alpha {cfg.get('aux_loss_alpha')}). GPU time used for this model, data preparation, smoke test and evaluation included: {a.gpu_seconds} s.")
    for e in end:
        w(f"  - run: {e.get('step')} steps, {e.get('tok_per_s', 0)/1e6:.2f}M tokens/s")
    w("- Loss curve: `training_curve.png` beside this card (tools/train/runs/ has the logs).\n")
    w("![training curve](training_curve.png)\n")
    eu = kinds.get("expert_util", [])
    if eu:
        w("## Expert utilisation (fraction of routed slots per expert over the last run)\n")
        w("| layer | min/uniform | max/uniform | fractions (%) |\n| --- | --- | --- | --- |")
        for l in eu[-1]["layers"]:
            fr = " ".join(f"{100*x:.1f}" for x in l["fractions"])
            w(f"| {l['layer']} | {l['min_over_uniform']:.2f} | {l['max_over_uniform']:.2f} | {fr} |")
        w("")
    w("## Evaluation\n")
    vf = kinds.get("val_final", [])
    if vf:
        w("Held-out perplexity (whole packages held out from training; plain documents, 2048-token windows):\n")
        w("| language | perplexity | tokens |\n| --- | --- | --- |")
        for lang, v in sorted(vf[-1].get("heldout", {}).items()):
            if v.get("ppl"):
                w(f"| {lang} | {v['ppl']:.2f} | {v['tokens']} |")
        w("")
    fe = kinds.get("fim_eval", [])
    if fe:
        w("Single-line FIM (cursor at a random point of a random held-out line, expected = rest of line; "
          "`tools/train/eval/fim_cases.jsonl`, scorer `tools/train/eval_fim.py`), transformers on the GPU, greedy; first number, inside the training call with a 35 s limit per template:\n")
        w("| template | cases | exact match | edit similarity | empty answers |\n| --- | --- | --- | --- | --- |")
        for r in fe[-2:]:
            w(f"| {r['order'].upper()} | {r['cases']} | {100*r['exact_match']:.1f}% | {100*r['edit_similarity']:.1f}% | {100*r['empty_predictions']:.1f}% |")
        w("")
    ev = os.path.join(a.run, "eval")
    if os.path.exists(os.path.join(ev, "spm.json")):
        w("Evaluation-only call on the committed folder (`tools/train/gpu_eval.sh`: transformers 5.17, bf16, greedy, "
          "stop at end token or newline):\n")
        w("| template | cases | exact match | edit similarity | empty answers |\n| --- | --- | --- | --- | --- |")
        for order in ("spm", "psm"):
            pth = os.path.join(ev, f"{order}.json")
            if os.path.exists(pth):
                r = json.load(open(pth))
                w(f"| {order.upper()} | {r['cases']} | {100*r['exact_match']:.1f}% | {100*r['edit_similarity']:.1f}% | {100*r['empty_predictions']:.1f}% |")
        w("")
        spm = json.load(open(os.path.join(ev, "spm.json")))
        w("SPM by language: " + ", ".join(f"{l} {v['cases']} cases EM {100*v['exact_match']:.1f}% ES {100*v['edit_similarity']:.1f}%"
                                        for l, v in spm["by_lang"].items()) + ".\n")
    vpath = os.path.join(ev, "verify.json")
    if os.path.exists(vpath):
        v = json.load(open(vpath))
        w(f"Export check without TF32 (`tools/train/verify_export.py`): transformers 5.17 `AutoModelForCausalLM` loads this folder "
          f"(lm_head tied: {v['lm_head_tied']}); on {len(v['sequences'])} held-out sequences ({sum(v['sequences'])} tokens) the max relative logit error "
          f"against the training code, both fp32 on the same bf16 weights, is {v['max_rel_err_fp32']:.1e}; argmax agreement "
          f"{100*min(v['argmax_agree']):.1f}% or better.\n")
    if a.ghostline_eval and os.path.exists(a.ghostline_eval):
        g = json.load(open(a.ghostline_eval))
        w(f"Through the CPU pipeline `ghostline complete FILE:LINE:COL --json`: {g['cases']} cases, exact match {100*g['exact_match']:.1f}%, edit similarity {100*g['edit_similarity']:.1f}%.\n")
    else:
        w("Through the CPU pipeline (`ghostline complete`): not measured yet; run "
          "`python3 tools/train/eval_fim.py --backend ghostline --bin <path to ghostline>`.\n")
    ver = kinds.get("verify", [])
    if ver:
        v = ver[-1]
        w(f"Export check inside the training call (TF32 on): transformers 5.17 loaded this folder with AutoModelForCausalLM; "
          f"max relative logit error against the training code (fp32, same bf16 weights): {v.get('max_rel_err_fp32', 'n/a'):.2e}; "
          f"lm_head tied: {v.get('lm_head_tied')}.\n" if "error" not in v else f"Export check FAILED: {v['error']}\n")
    w("## Data\n")
    if stats:
        w(f"{stats.get('train_tokens', 0)/1e6:.0f}M training tokens after deduplication and licence filtering "
          f"({stats.get('chars_per_token', 0):.2f} bytes per token); {stats.get('heldout_files')} files in "
          f"{len(stats.get('heldout_packages', []))} held-out packages. Per language (files / MB):\n")
        for lang in sorted(stats.get("files", {})):
            w(f"- {lang}: {stats['files'][lang]} files, {stats['bytes'][lang]/1e6:.1f} MB")
        w("")
    w("Sources and licences (details in `tools/train/DATA.md`): Python packages installed on the training machine "
      "(per-distribution licence check, copyleft skipped), CUDA/PyTorch/Triton C/C++ headers on that machine, Boost headers "
      "(BSL-1.0), Go 1.19 standard library (BSD-3-Clause), Rust 1.63 library and compiler (MIT OR Apache-2.0), npm packages "
      "under MIT/Apache-2.0/BSD/ISC. Every file whose header mentions GPL/LGPL/AGPL/MPL was dropped; exact duplicates removed.\n")
    notes = os.path.join(a.run, "notes.md")
    if os.path.exists(notes):
        w(open(notes, encoding="utf-8").read())
    w("## Licence\n")
    w("The weights and tokenizer are released under the Apache License 2.0. The training data remain under their own "
      "permissive licences listed above; the model may reproduce fragments of them.\n")
    with open(os.path.join(a.model, "README.md"), "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
