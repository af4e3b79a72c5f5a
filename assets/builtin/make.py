"""Trains lowrank's built-in model: a small Llama (hidden 128, 4 layers, 4/2 heads, 843,648
parameters, saved in bfloat16) on generated text — half "subject verb object" sentences, half
counting ("7 8 9 10.", "25 18 11 4.": forwards or backwards in steps of 1 to 20, numbers 0-58) —
with the byte-level BPE tokenizer of test/fixtures/tokenizer, in which every number 0-58 is one
token. The counting gives the number tokens a meaning (the first version, sentences only, left them
random, and no fine-tune of its linear layers could learn to add); the main job then teaches a
format the model has never seen, "a plus b is c". Writes model/ here (config.json,
model.safetensors, tokenizer files). Needs torch and transformers; on the 2-core CPU machine about
15 minutes (seeded: the same torch build and thread count reproduce the file):
    python3 make.py"""
import os, random, shutil, time
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from tokenizers import Tokenizer

torch.set_num_threads(2)
here = os.path.dirname(os.path.abspath(__file__))
tok_dir = os.path.join(here, "..", "..", "test", "fixtures", "tokenizer")
tok = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
EOS = 0

random.seed(1)
subjects = ["the cat", "a dog", "my friend", "the model", "our team", "the river", "a small bird", "the teacher"]
verbs = ["sees", "likes", "builds", "finds", "follows", "paints", "reads", "carries"]
objects = ["a red ball", "the old map", "two green apples", "a long letter", "the quiet house", "seven stones", "a blue boat"]

def counting():
    k, n, s = random.randint(1, 20), random.randint(3, 8), random.randint(0, 29)
    seq = [s + k * i for i in range(n) if s + k * i <= 58] if random.random() < 0.5 else [s - k * i for i in range(n) if s - k * i >= 0]
    return " ".join(map(str, seq)) + "."

stream = []
for _ in range(60000):
    text = f"{random.choice(subjects)} {random.choice(verbs)} {random.choice(objects)}." if random.random() < 0.5 else counting()
    stream += tok.encode(text).ids + [EOS]
data = torch.tensor(stream)

cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=128, intermediate_size=344, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                  bos_token_id=EOS, eos_token_id=EOS, torch_dtype="float32")
torch.manual_seed(0)
model = LlamaForCausalLM(cfg)
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
T, B, steps = 64, 64, int(os.environ.get("STEPS", "1000"))
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.05)
g = torch.Generator().manual_seed(0)
t0 = time.time()
for step in range(steps):
    starts = torch.randint(0, len(data) - T - 1, (B,), generator=g)
    x = torch.stack([data[s:s + T] for s in starts])
    loss = model(input_ids=x, labels=x).loss
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    if step % 100 == 0 or step == steps - 1:
        print(step, round(loss.item(), 4), f"{time.time() - t0:.0f} s", flush=True)
out = os.environ.get("OUT", os.path.join(here, "model"))
shutil.rmtree(out, ignore_errors=True)
model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)  # bf16: 1.7 MB shipped
for f in ["tokenizer.json", "tokenizer_config.json"]:
    shutil.copy(os.path.join(tok_dir, f), os.path.join(out, f))
print("parameters", sum(p.numel() for p in model.parameters()), "seconds", round(time.time() - t0))
