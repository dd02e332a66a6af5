"""Training-side implementation of transformers 5.17's DeepseekV2 forward pass (PyTorch).

Owns: the model config (Hub-style config.json dict), the modules (MLA attention with
q_lora_rank null, DeepSeekMoE with softmax top-k greedy gating and shared experts, first layers
dense), the expert-level balance loss, and the mapping to the Hub checkpoint layout.

Semantics that must match transformers (and the C++ engine):
- RoPE on the last qk_rope_head_dim dims of q and k with INTERLEAVED pairs (x[2i], x[2i+1]),
  inv_freq = theta^(-2i/qk_rope_head_dim), no scaling.
- softmax scale = (qk_nope_head_dim + qk_rope_head_dim) ** -0.5.
- router: logits in fp32, softmax over all experts, top-k greedy, weights NOT renormalised,
  times routed_scaling_factor; experts are SwiGLU MLPs; shared experts added unweighted.
- RMSNorm: weight * (x_fp32 * rsqrt(mean(x^2) + eps)).to(input dtype).
For speed the routed experts are computed densely as two GEMMs over all experts, masked by the
(mostly zero) routing weights; the result equals the sparse top-k sum.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def default_config(vocab_size=16384):
    return {
        "architectures": ["DeepseekV2ForCausalLM"],
        "model_type": "deepseek_v2",
        "vocab_size": vocab_size,
        "hidden_size": 256,
        "intermediate_size": 768,
        "moe_intermediate_size": 64,
        "num_hidden_layers": 6,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "n_routed_experts": 16,
        "n_shared_experts": 1,
        "num_experts_per_tok": 2,
        "first_k_dense_replace": 1,
        "moe_layer_freq": 1,
        "routed_scaling_factor": 1.0,
        "scoring_func": "softmax",
        "topk_method": "greedy",
        "n_group": 1,
        "topk_group": 1,
        "norm_topk_prob": False,
        "aux_loss_alpha": 0.003,
        "seq_aux": False,
        "q_lora_rank": None,
        "kv_lora_rank": 128,
        "qk_nope_head_dim": 64,
        "qk_rope_head_dim": 32,
        "v_head_dim": 64,
        "hidden_act": "silu",
        "max_position_embeddings": 2048,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "rms_norm_eps": 1e-6,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "tie_word_embeddings": True,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": None,
        "use_cache": True,
        "torch_dtype": "bfloat16",
    }


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x32 = x.float()
        y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * y.to(dt)


def rope_tables(c, T, device):
    d = c["qk_rope_head_dim"]
    inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.int64, device=device).float() / d))
    pos = torch.arange(T, device=device).float()
    f = torch.outer(pos, inv)  # T, d/2
    return torch.cos(f), torch.sin(f)


def apply_rope(x, cos, sin):
    """x: (..., T, d) with interleaved pairs; cos/sin: (T, d/2). Computed in fp32."""
    dt = x.dtype
    xf = x.float().reshape(*x.shape[:-1], -1, 2)
    a, b = xf[..., 0], xf[..., 1]
    out = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1)
    return out.flatten(-2).to(dt)


class MLA(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, h = c["num_attention_heads"], c["hidden_size"]
        self.H, self.dn, self.dr, self.dv = H, c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
        self.r = c["kv_lora_rank"]
        self.q_proj = nn.Linear(h, H * (self.dn + self.dr), bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(h, self.r + self.dr, bias=False)
        self.kv_a_layernorm = RMSNorm(self.r, 1e-6)  # transformers uses the default eps here
        self.kv_b_proj = nn.Linear(self.r, H * (self.dn + self.dv), bias=False)
        self.o_proj = nn.Linear(H * self.dv, h, bias=False)
        self.scale = (self.dn + self.dr) ** -0.5

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.dn + self.dr).transpose(1, 2)
        q_nope, q_pe = q.split([self.dn, self.dr], dim=-1)
        ckv = self.kv_a_proj_with_mqa(x)
        c, k_pe = ckv.split([self.r, self.dr], dim=-1)
        kv = self.kv_b_proj(self.kv_a_layernorm(c)).view(B, T, self.H, self.dn + self.dv).transpose(1, 2)
        k_nope, v = kv.split([self.dn, self.dv], dim=-1)
        k_pe = k_pe.view(B, 1, T, self.dr)
        q_pe = apply_rope(q_pe, cos, sin)
        k_pe = apply_rope(k_pe, cos, sin).expand(B, self.H, T, self.dr)
        q = torch.cat((q_nope, q_pe), dim=-1)
        k = torch.cat((k_nope, k_pe), dim=-1)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        return self.o_proj(o.transpose(1, 2).reshape(B, T, self.H * self.dv))


class MLP(nn.Module):
    def __init__(self, h, i):
        super().__init__()
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MoE(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i, E = c["hidden_size"], c["moe_intermediate_size"], c["n_routed_experts"]
        self.E, self.I, self.k = E, i, c["num_experts_per_tok"]
        self.scale = c["routed_scaling_factor"]
        self.gate = nn.Linear(h, E, bias=False)
        # Expert e's gate_proj = w_gate[e] (I, h), up_proj = w_up[e] (I, h), down_proj = w_down[e] (h, I).
        self.w_gate = nn.Parameter(torch.empty(E, i, h))
        self.w_up = nn.Parameter(torch.empty(E, i, h))
        self.w_down = nn.Parameter(torch.empty(E, h, i))
        self.shared_experts = MLP(h, i * c["n_shared_experts"])

    def route(self, x):
        logits = F.linear(x.float(), self.gate.weight.float())
        probs = logits.softmax(dim=-1, dtype=torch.float32)
        w, idx = torch.topk(probs, self.k, dim=-1, sorted=False)
        return probs, w * self.scale, idx

    def forward(self, x):
        B, T, h = x.shape
        xf = x.reshape(-1, h)
        probs, w, idx = self.route(xf)
        dense_w = torch.zeros_like(probs).scatter_(1, idx, w)  # N, E (fp32)
        gu = torch.cat((self.w_gate, self.w_up), dim=1)  # E, 2I, h
        a = xf @ gu.reshape(-1, h).t()  # N, E*2I
        a = a.view(-1, self.E, 2 * self.I)
        g, u = a[..., : self.I], a[..., self.I:]
        act = F.silu(g) * u * dense_w.unsqueeze(-1).to(a.dtype)  # N, E, I
        down = self.w_down.permute(0, 2, 1).reshape(self.E * self.I, h)  # (E*I, h)
        y = act.reshape(-1, self.E * self.I) @ down.to(act.dtype)
        y = y.view(B, T, h) + self.shared_experts(x)
        # DeepSeekMoE expert-level balance loss: E/(K*N) * count_i times mean prob_i, summed.
        N = xf.shape[0]
        counts = torch.zeros(self.E, device=x.device).scatter_add_(
            0, idx.reshape(-1), torch.ones(idx.numel(), device=x.device))
        f = counts * (self.E / (self.k * N))
        aux = (f * probs.mean(0)).sum()
        return y, aux, counts.detach()


class Block(nn.Module):
    def __init__(self, c, li):
        super().__init__()
        eps = c["rms_norm_eps"]
        self.input_layernorm = RMSNorm(c["hidden_size"], eps)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], eps)
        self.self_attn = MLA(c)
        self.is_moe = li >= c["first_k_dense_replace"]
        self.mlp = MoE(c) if self.is_moe else MLP(c["hidden_size"], c["intermediate_size"])

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        hN = self.post_attention_layernorm(x)
        if self.is_moe:
            y, aux, counts = self.mlp(hN)
        else:
            y, aux, counts = self.mlp(hN), None, None
        return x + y, aux, counts


class DeepseekV2LM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Block(c, i) for i in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.reset_parameters()

    def reset_parameters(self):
        std = self.c["initializer_range"]
        out_std = std / math.sqrt(2 * self.c["num_hidden_layers"])
        for n, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p)
            elif n.endswith(("o_proj.weight", "down_proj.weight", "w_down")):
                nn.init.normal_(p, 0.0, out_std)
            else:
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        T = ids.shape[1]
        cos, sin = rope_tables(self.c, T, ids.device)
        x = self.embed_tokens(ids)
        auxes, counts = [], []
        for blk in self.layers:
            x, aux, cnt = blk(x, cos, sin)
            if aux is not None:
                auxes.append(aux)
                counts.append(cnt)
        x = self.norm(x)
        logits = F.linear(x, self.embed_tokens.weight)  # tied lm_head
        aux = torch.stack(auxes).sum() if auxes else logits.new_zeros(())
        return logits, aux, counts


def to_hub_state_dict(model):
    """Hub layout names (per-expert tensors). lm_head is tied (tie_word_embeddings) and not stored."""
    sd = {}
    for n, p in model.state_dict().items():
        p = p.detach()
        if n == "embed_tokens.weight" or n == "norm.weight":
            sd["model." + n] = p
            continue
        if ".mlp.w_" in n:
            li = n.split(".")[1]
            kind = n.rsplit(".", 1)[1]  # w_gate / w_up / w_down
            proj = {"w_gate": "gate_proj", "w_up": "up_proj", "w_down": "down_proj"}[kind]
            for e in range(p.shape[0]):
                sd[f"model.layers.{li}.mlp.experts.{e}.{proj}.weight"] = p[e]
            continue
        sd["model." + n] = p
    return {k: v.contiguous() for k, v in sd.items()}


def from_hub_state_dict(model, sd):
    """Inverse of to_hub_state_dict; returns the list of missing keys (empty when complete)."""
    own = {}
    E = model.c["n_routed_experts"]
    for n, p in model.state_dict().items():
        if ".mlp.w_" in n:
            li = n.split(".")[1]
            proj = {"w_gate": "gate_proj", "w_up": "up_proj", "w_down": "down_proj"}[n.rsplit(".", 1)[1]]
            keys = [f"model.layers.{li}.mlp.experts.{e}.{proj}.weight" for e in range(E)]
            if all(k in sd for k in keys):
                own[n] = torch.stack([sd[k] for k in keys])
        elif "model." + n in sd:
            own[n] = sd["model." + n]
    missing = [n for n in model.state_dict() if n not in own]
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in own.items()}, strict=False)
    return missing


def count_params(model):
    return sum(p.numel() for p in model.parameters())
