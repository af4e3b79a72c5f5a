"""Loads every adapter that make.sh wrote in real PEFT and checks: the adapter file has exactly the
keys, shapes and values PEFT's get_peft_model_state_dict gives after loading it; PEFT's
merge_and_unload equals lowrank's merge; logits of base + adapter equal lowrank's merged model; for the
methods saved in a PEFT tuner's format, also the logits of lowrank's convert-to-lora LoRA; and
`lowrank generate`'s greedy tokens with an adapter unmerged equal PEFT's over transformers' generate.
Writes peft-check.json to $OUT (or here)."""
import json, os, sys, torch, warnings
import peft, transformers
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from peft import PeftModel, get_peft_model_state_dict
print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)
torch.manual_seed(0)

def weights(folder):
    out = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"): out.update(load_file(os.path.join(folder, f)))
    return out

results = []
cases = [("llama-base", a, f"merged-{a}", "llama-tuned") for a in ["extract", "dyn", "resize", "svd", "cat", "ties"]] + [("gpt2-base", "gpt2", "merged-gpt2", "gpt2-tuned")]
for base, ad, merged, tuned in cases:
    adir = f"ad-{ad}"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32)
        pm = PeftModel.from_pretrained(model, adir)
    warns = [str(x.message)[:200] for x in w if "missing" in str(x.message).lower() or "unexpected" in str(x.message).lower() or "mismatch" in str(x.message).lower()]
    file_sd = load_file(os.path.join(adir, "adapter_model.safetensors"))
    model_sd = get_peft_model_state_dict(pm)
    keys_equal = set(file_sd) == set(model_sd)
    shapes_equal = keys_equal and all(file_sd[k].shape == model_sd[k].shape for k in file_sd)
    values_equal = shapes_equal and all(torch.equal(file_sd[k], model_sd[k].cpu()) for k in file_sd)
    ids = torch.randint(0, 100, (2, 16))
    with torch.no_grad():
        peft_logits = pm(ids).logits
        mu = pm.merge_and_unload()
        ours = weights(merged)
        msd = mu.state_dict()
        maxrel = 0.0
        for k, v in ours.items():
            if k not in msd: continue
            ref = msd[k].double()
            d = (v.double() - ref).abs().max().item() / max(ref.abs().max().item(), 1e-30)
            maxrel = max(maxrel, d)
        ours_model = AutoModelForCausalLM.from_pretrained(merged, torch_dtype=torch.float32)
        ours_logits = ours_model(ids).logits
        tuned_logits = AutoModelForCausalLM.from_pretrained(tuned, torch_dtype=torch.float32)(ids).logits
        base_logits = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32)(ids).logits
    scale = peft_logits.abs().max().item()
    r = dict(adapter=adir, keys=len(file_sd), keys_equal=keys_equal, shapes_equal=shapes_equal, values_equal=values_equal, warnings=warns,
             merged_weight_maxrel=maxrel, logits_peft_vs_our_merged=(peft_logits - ours_logits).abs().max().item() / scale,
             logits_peft_vs_tuned=(peft_logits - tuned_logits).abs().max().item() / scale,
             logits_base_vs_tuned=(base_logits - tuned_logits).abs().max().item() / scale,
             ranks=sorted({v.shape[0] for k, v in file_sd.items() if "lora_A" in k}))
    results.append(r)
    print(json.dumps(r))
# lowrank init: the adapter loads as a plain LoRA over the residual model and leaves the logits unchanged.
for ad, base in [("init-pissa", "llama-base"), ("init-milora", "llama-base"), ("init-olora", "llama-base"), ("init-pissa-niter", "llama-base"), ("init-gpt2-pissa", "gpt2-base")]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        residual = AutoModelForCausalLM.from_pretrained(ad + "-residual", torch_dtype=torch.float32)
        pm = PeftModel.from_pretrained(residual, ad)
    warns = [str(x.message)[:200] for x in w if "missing" in str(x.message).lower() or "unexpected" in str(x.message).lower()]
    file_sd = load_file(os.path.join(ad, "adapter_model.safetensors"))
    model_sd = get_peft_model_state_dict(pm)
    ids = torch.randint(0, 100, (2, 16))
    with torch.no_grad():
        base_logits = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32)(ids).logits
        adapted = pm(ids).logits
    r = dict(adapter=ad, keys_equal=set(file_sd) == set(model_sd), values_equal=all(torch.equal(file_sd[k], model_sd[k].cpu()) for k in file_sd),
             warnings=warns, init=pm.peft_config["default"].init_lora_weights,
             logits_adapted_vs_base=(adapted - base_logits).abs().max().item() / base_logits.abs().max().item())
    results.append(r)
    print(json.dumps(r))
# Methods saved in a PEFT tuner's format: PEFT loads the folder (file keys against its state dict),
# PEFT's merge_and_unload equals lowrank's merge, PEFT's logits equal those of lowrank's merged model,
# and lowrank's convert-to-lora LoRA gives the same logits in PEFT.
for m in ["vera", "randlora", "unilora", "vblora", "tinylora"]:
    ad = f"tr-{m}"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        pm = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("llama-tok", torch_dtype=torch.float32), ad)
    warns = [str(x.message)[:200] for x in w if "missing" in str(x.message).lower() or "unexpected" in str(x.message).lower() or "mismatch" in str(x.message).lower()]
    file_sd = load_file(os.path.join(ad, "adapter_model.safetensors"))
    model_sd = get_peft_model_state_dict(pm)
    common = [k for k in file_sd if k in model_sd]
    ids = torch.randint(0, 459, (2, 16))
    with torch.no_grad():
        peft_logits = pm(ids).logits
        as_lora = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("llama-tok", torch_dtype=torch.float32), f"lora-{ad}")(ids).logits
        msd = pm.merge_and_unload().state_dict()
        maxrel = 0.0
        for k, v in weights(f"merged-{ad}").items():
            if k in msd:
                ref = msd[k].double()
                maxrel = max(maxrel, (v.double() - ref).abs().max().item() / max(ref.abs().max().item(), 1e-30))
        ours_logits = AutoModelForCausalLM.from_pretrained(f"merged-{ad}", torch_dtype=torch.float32)(ids).logits
        base_logits = AutoModelForCausalLM.from_pretrained("llama-tok", torch_dtype=torch.float32)(ids).logits
    scale = peft_logits.abs().max().item()
    r = dict(adapter=ad, peft_type=str(pm.peft_config["default"].peft_type), file_keys=len(file_sd), state_keys=len(model_sd),
             only_in_file=sorted(set(file_sd) - set(model_sd))[:5], only_in_state=sorted(set(model_sd) - set(file_sd))[:5],
             common_values_equal=all(torch.equal(file_sd[k], model_sd[k].cpu()) for k in common), warnings=warns,
             merged_weight_maxrel=maxrel, logits_peft_vs_our_merged=(peft_logits - ours_logits).abs().max().item() / scale,
             logits_peft_vs_our_lora=(peft_logits - as_lora).abs().max().item() / scale,
             logits_peft_vs_base=(peft_logits - base_logits).abs().max().item() / scale)
    results.append(r)
    print(json.dumps(r))
# Generation: the built-in model (bf16 on disk, float32 here as in lowrank) with each adapter, greedy.
builtin = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "assets", "builtin", "model")
for a in ["lora", "pissa", "dora"]:
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(builtin, torch_dtype=torch.float32), f"gen-{a}").eval()
    recs = [json.loads(l) for l in open(f"gen-{a}.jsonl")]
    same = 0
    for rec in recs:
        ids = torch.tensor([rec["prompt_ids"]])
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False, eos_token_id=0, pad_token_id=0)
        same += out[0, ids.shape[1]:].tolist() == rec["generated_ids"]
    r = dict(generate=a, prompts=len(recs), same_tokens_as_peft=same, exact_match_lowrank=sum(rec["exact"] for rec in recs))
    results.append(r)
    print(json.dumps(r))
json.dump(results, open(os.path.join(os.environ.get("OUT", "."), "peft-check.json"), "w"), indent=1)
