/**
 * Independent numpy implementations of the two model families (float64; Hugging Face's arithmetic),
 * as python source defining `llama_logits(W, ids, B, H, KV, L, eps, theta)` and
 * `gpt2_logits(W, ids, B, H, L)`: logits [B·T, vocab] of token ids [B·T] with weights W by name
 * (GPT-2's Conv1D weights as stored, [in, out]), and `read_weights(q)` for weights sent as
 * {name: {"d": values, "s": shape}}. Tests append their own main to one of them.
 */

export const NUMPY_LLAMA = `
import json, sys
def read_weights(q): return {k: np.array(v["d"], dtype=np.float64).reshape(v["s"]) for k, v in q["w"].items()}
def llama_logits(W, ids, B, H, KV, L, eps, theta):
    ids = np.array(ids); T = len(ids) // B
    C = W["model.embed_tokens.weight"].shape[1]; D = C // H
    def rms(x, g): return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g
    def rope(x, heads):
        inv = theta ** (-np.arange(0, D, 2) / D)
        ang = (np.arange(len(x)) % T)[:, None] * inv[None, :]
        cos = np.concatenate([np.cos(ang)] * 2, -1)[:, None, :]; sin = np.concatenate([np.sin(ang)] * 2, -1)[:, None, :]
        xs = x.reshape(len(x), heads, D)
        rot = np.concatenate([-xs[..., D // 2:], xs[..., :D // 2]], -1)
        return (xs * cos + rot * sin).reshape(len(x), heads * D)
    x = W["model.embed_tokens.weight"][ids]
    for l in range(L):
        p = f"model.layers.{l}."
        n1 = rms(x, W[p + "input_layernorm.weight"])
        qq = rope(n1 @ W[p + "self_attn.q_proj.weight"].T, H); kk = rope(n1 @ W[p + "self_attn.k_proj.weight"].T, KV); vv = n1 @ W[p + "self_attn.v_proj.weight"].T
        o = np.zeros_like(qq)
        for b in range(B):
            r = slice(b * T, (b + 1) * T)
            for h in range(H):
                g = h // (H // KV)
                Q = qq[r, h * D:(h + 1) * D]; K = kk[r, g * D:(g + 1) * D]; V = vv[r, g * D:(g + 1) * D]
                S = Q @ K.T / np.sqrt(D) + np.triu(np.full((T, T), -np.inf), 1)
                P = np.exp(S - S.max(-1, keepdims=True)); P /= P.sum(-1, keepdims=True)
                o[r, h * D:(h + 1) * D] = P @ V
        h_ = x + o @ W[p + "self_attn.o_proj.weight"].T
        n2 = rms(h_, W[p + "post_attention_layernorm.weight"])
        a = n2 @ W[p + "mlp.gate_proj.weight"].T
        x = h_ + ((a / (1 + np.exp(-a))) * (n2 @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
    head = W["lm_head.weight"] if "lm_head.weight" in W else W["model.embed_tokens.weight"]
    return rms(x, W["model.norm.weight"]) @ head.T
`;

export const NUMPY_GPT2 = `
import json, sys
def read_weights(q): return {k: np.array(v["d"], dtype=np.float64).reshape(v["s"]) for k, v in q["w"].items()}
def gpt2_logits(W, ids, B, H, L):
    ids = np.array(ids); T = len(ids) // B
    C = W["transformer.wte.weight"].shape[1]; D = C // H
    def ln(x, g, b): m = x.mean(-1, keepdims=True); v = ((x - m) ** 2).mean(-1, keepdims=True); return (x - m) / np.sqrt(v + 1e-5) * g + b
    def gelu(x): return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    x = W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][np.arange(len(ids)) % T]
    for l in range(L):
        p = f"transformer.h.{l}."
        qkv = ln(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"]) @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
        qq, kk, vv = qkv[:, :C], qkv[:, C:2 * C], qkv[:, 2 * C:]
        o = np.zeros_like(qq)
        for b in range(B):
            r = slice(b * T, (b + 1) * T)
            for h in range(H):
                c = slice(h * D, (h + 1) * D)
                S = qq[r, c] @ kk[r, c].T / np.sqrt(D) + np.triu(np.full((T, T), -np.inf), 1)
                P = np.exp(S - S.max(-1, keepdims=True)); P /= P.sum(-1, keepdims=True)
                o[r, c] = P @ vv[r, c]
        a = x + o @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        f = gelu(ln(a, W[p + "ln_2.weight"], W[p + "ln_2.bias"]) @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"])
        x = a + f @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
    return ln(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"]) @ W["transformer.wte.weight"].T
`;
