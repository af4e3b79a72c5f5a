"""Trains lowrank's built-in model: a small Llama (hidden 128, 4 layers, 4/2 heads, ~0.9M
parameters, saved in bfloat16) on generated "subject verb object" sentences, with the byte-level BPE tokenizer of
test/fixtures/tokenizer. Writes model/ (config.json, model.safetensors, tokenizer files) here.
Needs torch and transformers (made on the device machine; about a minute on a GPU):
    python3 make.py"""
import json, os, random, shutil
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from tokenizers import Tokenizer

here = os.path.dirname(os.path.abspath(__file__))
tok_dir = os.path.join(here, "..", "..", "test", "fixtures", "tokenizer")
tok = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
EOS = 0

random.seed(1)
subjects = ["the cat", "a dog", "my friend", "the model", "our team", "the river", "a small bird", "the teacher"]
verbs = ["sees", "likes", "builds", "finds", "follows", "paints", "reads", "carries"]
objects = ["a red ball", "the old map", "two green apples", "a long letter", "the quiet house", "seven stones", "a blue boat"]
stream = []
for _ in range(60000):
    stream += tok.encode(f"{random.choice(subjects)} {random.choice(verbs)} {random.choice(objects)}.").ids + [EOS]
data = torch.tensor(stream)

cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=128, intermediate_size=344, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                  bos_token_id=EOS, eos_token_id=EOS, torch_dtype="float32")
torch.manual_seed(0)
dev = "cuda" if torch.cuda.is_available() else "cpu"
model = LlamaForCausalLM(cfg).to(dev)
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
T, B, steps = 64, 64, 1500
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.05)
g = torch.Generator().manual_seed(0)
for step in range(steps):
    starts = torch.randint(0, len(data) - T - 1, (B,), generator=g)
    x = torch.stack([data[s:s + T] for s in starts]).to(dev)
    loss = model(input_ids=x, labels=x).loss
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    if step % 250 == 0 or step == steps - 1:
        print(step, round(loss.item(), 4))
out = os.path.join(here, "model")
shutil.rmtree(out, ignore_errors=True)
model.cpu().to(torch.bfloat16).save_pretrained(out, safe_serialization=True)  # bf16: 1.7 MB shipped
for f in ["tokenizer.json", "tokenizer_config.json"]:
    shutil.copy(os.path.join(tok_dir, f), os.path.join(out, f))
print("parameters", sum(p.numel() for p in model.parameters()))
