"""Train ghostline-coder-tiny (DeepseekV2 MoE) on prepared token streams, time-limited.

Owns: the training loop (bf16 autocast, fused AdamW, warmup + cosine over the wall-clock budget,
DeepSeekMoE balance loss), periodic checkpoints (bf16 shards of the export, small enough to come
back from the GPU machine), resuming from such shards, and the end-of-run report: per-layer expert
utilisation, held-out perplexity per language, the transformers reload/logit check, a first FIM
score through transformers (SPM and PSM), the loss curve PNG and the exported model folder.
Usage (GPU machine):
  python3 train.py --data /tmp/gl --out $OUT --budget 300 [--resume 'dir/shard*.safetensors']
"""
import argparse
import glob
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402
import export_hf  # noqa: E402
import eval_fim  # noqa: E402


def log(f, **kw):
    f.write(json.dumps(kw) + "\n")
    f.flush()
    print(json.dumps(kw), flush=True)


@torch.no_grad()
def perplexity(model, data, T, dev, max_windows=48):
    model.eval()
    n = (data.numel() - 1) // T
    losses = []
    for i in range(min(n, max_windows)):
        x = data[i * T:(i + 1) * T + 1].long().to(dev)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, _, _ = model(x[:-1].unsqueeze(0))
        losses.append(F.cross_entropy(logits.float()[0], x[1:]).item())
    model.train()
    return (math.exp(sum(losses) / len(losses)), sum(losses) / len(losses)) if losses else (None, None)


def plot(log_path, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [json.loads(l) for l in open(log_path)]
    tr = [r for r in rows if r.get("kind") == "train"]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].plot([r["tokens"] / 1e6 for r in tr], [r["loss"] for r in tr], label="train CE")
    va = [r for r in rows if r.get("kind") == "val"]
    if va:
        ax[0].plot([r["tokens"] / 1e6 for r in va], [r["loss"] for r in va], "o-", label="held-out CE")
    ax[0].set_xlabel("tokens (M)"); ax[0].set_ylabel("cross-entropy (nats)"); ax[0].legend(); ax[0].grid(alpha=.3)
    ax[1].plot([r["tokens"] / 1e6 for r in tr], [r["aux"] for r in tr])
    ax[1].set_xlabel("tokens (M)"); ax[1].set_ylabel("balance loss (sum over MoE layers)"); ax[1].grid(alpha=.3)
    fig.suptitle("ghostline-coder-tiny training")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, required=True, help="seconds of training (eval/export come after)")
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--aux-alpha", type=float, default=0.003)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--ckpt-every", type=float, default=100.0)
    ap.add_argument("--resume", default="", help="glob of bf16 shard files from an earlier run")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--moe-inter", type=int, default=0)
    ap.add_argument("--eval-cases", type=int, default=200)
    ap.add_argument("--eval-seconds", type=float, default=60)
    ap.add_argument("--export", default="/tmp/gl_export")
    args = ap.parse_args()
    t_start = time.time()
    dev = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train_log.jsonl"), "a")

    tok_path = os.path.join(args.data, "tokenizer.json")
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    cfg = M.default_config(tok.get_vocab_size())
    if args.layers:
        cfg["num_hidden_layers"] = args.layers
    if args.moe_inter:
        cfg["moe_intermediate_size"] = args.moe_inter
    cfg["aux_loss_alpha"] = args.aux_alpha
    cfg["bos_token_id"] = tok.token_to_id(export_hf.fim.BOS)
    cfg["eos_token_id"] = tok.token_to_id(export_hf.fim.EOS)

    train = torch.from_numpy(np.fromfile(os.path.join(args.data, "train.u16"), dtype=np.uint16).astype(np.int32)).to(dev)
    vals = {os.path.basename(p)[4:-4]: torch.from_numpy(np.fromfile(p, dtype=np.uint16).astype(np.int32))
            for p in sorted(glob.glob(os.path.join(args.data, "val_*.u16")))}
    model = M.DeepseekV2LM(cfg).to(dev)
    resumed = None
    if args.resume:
        files = sorted(glob.glob(args.resume))
        if files:
            missing = M.from_hub_state_dict(model, export_hf.load_shards(files))
            resumed = {"files": files, "missing": missing}
    nparams = M.count_params(model)
    log(logf, kind="start", params=nparams, config=cfg, train_tokens=int(train.numel()),
        val_tokens={k: int(v.numel()) for k, v in vals.items()}, resumed=resumed, args=vars(args))

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    fwd = torch.compile(model) if args.compile else model
    T, B = args.seq, args.batch
    ar = torch.arange(T + 1, device=dev)
    n_moe = sum(1 for b in model.layers if b.is_moe)
    util = torch.zeros(n_moe, cfg["n_routed_experts"], device=dev)
    util_total = torch.zeros_like(util)
    step, tokens, t_train0 = 0, 0, time.time()
    last_ckpt = time.time()
    g = torch.Generator(device=dev)
    g.manual_seed(1234 + (7 if resumed else 0))
    losses = []
    while True:
        el = time.time() - t_train0
        if el >= args.budget or (args.max_steps and step >= args.max_steps):
            break
        frac = min(1.0, el / args.budget)
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (
            args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))
        for gr in opt.param_groups:
            gr["lr"] = lr
        off = torch.randint(0, train.numel() - T - 1, (B,), device=dev, generator=g)
        xy = train[off[:, None] + ar].long()
        x, y = xy[:, :-1], xy[:, 1:]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, aux, counts = fwd(x)
            ce = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.reshape(-1))
            loss = ce + args.aux_alpha * aux
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        cs = torch.stack(counts)
        util += cs
        util_total += cs
        step += 1
        tokens += B * T
        losses.append((ce.detach(), aux.detach()))
        if step % 25 == 0 or step == 1:
            ce_v = torch.stack([a for a, _ in losses]).mean().item()
            aux_v = torch.stack([b for _, b in losses]).mean().item()
            losses = []
            el = time.time() - t_train0
            log(logf, kind="train", step=step, tokens=tokens, loss=ce_v, aux=aux_v, lr=lr,
                tok_per_s=tokens / el, elapsed=el)
        if time.time() - last_ckpt > args.ckpt_every:
            export_hf.export(model, cfg, tok_path, args.export, shard_dir=args.out)
            last_ckpt = time.time()
            if "python" in vals:
                ppl, l = perplexity(model, vals["python"], T, dev, 8)
                log(logf, kind="val", step=step, tokens=tokens, loss=l, ppl=ppl, lang="python")
    train_s = time.time() - t_train0
    log(logf, kind="end_train", step=step, tokens=tokens, seconds=train_s, tok_per_s=tokens / max(train_s, 1e-9))
    # Expert utilisation: fraction of routed slots per expert, per MoE layer, over the whole run.
    u = (util_total / util_total.sum(-1, keepdim=True)).cpu().tolist()
    log(logf, kind="expert_util", layers=[{"layer": i + cfg["first_k_dense_replace"], "fractions": r,
                                            "max_over_uniform": max(r) * len(r), "min_over_uniform": min(r) * len(r)}
                                           for i, r in enumerate(u)])
    export_hf.export(model, cfg, tok_path, args.export, shard_dir=args.out)
    results = {"params": nparams, "steps": step, "train_seconds": train_s}
    for lang, v in vals.items():
        ppl, l = perplexity(model, v, T, dev)
        results.setdefault("heldout", {})[lang] = {"ppl": ppl, "ce": l, "tokens": int(v.numel())}
    log(logf, kind="val_final", step=step, tokens=tokens, **results)
    try:
        plot(os.path.join(args.out, "train_log.jsonl"), os.path.join(args.out, "loss.png"))
    except Exception as e:
        log(logf, kind="plot_error", error=str(e))
    seqs = [vals[k][:256].tolist() for k in list(vals)[:4]] or [train[:256].tolist()]
    try:
        ver = export_hf.verify_with_transformers(args.export, model, seqs, dev)
    except Exception as e:
        ver = {"error": f"{type(e).__name__}: {e}"}
    log(logf, kind="verify", **ver)
    if args.eval_cases and os.path.exists(os.path.join(args.data, "cases.jsonl")) and "error" not in ver:
        try:
            from transformers import AutoModelForCausalLM
            hf = AutoModelForCausalLM.from_pretrained(args.export, dtype=torch.bfloat16).to(dev).eval()
            cases = eval_fim.load_cases(os.path.join(args.data, "cases.jsonl"), args.eval_cases)
            for order in ("spm", "psm"):
                rows = eval_fim.hf_predict(hf, tok, cases, order, dev, time_limit=args.eval_seconds / 2)
                s = eval_fim.summarize(rows)
                log(logf, kind="fim_eval", order=order, **s, examples=rows[:12])
        except Exception as e:
            log(logf, kind="fim_eval_error", error=f"{type(e).__name__}: {e}")
    log(logf, kind="done", seconds=time.time() - t_start)


if __name__ == "__main__":
    main()
