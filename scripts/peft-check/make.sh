#!/usr/bin/env bash
# Builds the folders that check.py loads in real PEFT: tiny Llama and GPT-2 checkpoints, tuned
# copies with planted low-rank updates, and every adapter lowrank writes from them (extract, dynamic
# ranks with modules_to_save, resize, combine svd/cat/ties, GPT-2 fan_in_fan_out) plus lowrank's
# merges, lowrank init's adapters with their residual models, and the methods lowrank saves in a PEFT
# tuner's format (VeRA, RandLoRA, Uni-LoRA, VB-LoRA, TinyLoRA) trained, merged and converted to LoRA.
# Run from the repository root after `npm run build`:
#   bash scripts/peft-check/make.sh && (cd scripts/peft-check/work && python3 ../check.py)
# check.py needs torch, transformers and peft (the device machine has them; so does a venv with
# peft 0.21.0 and torch CPU: result-peft-0.21.0-cpu.json).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$here/work" && mkdir -p "$here/work" && cd "$here/work"
node ../make-models.mjs
L="node $here/../../bin/lowrank.js"
q() { "$@" >/dev/null; }
q $L extract --base llama-base --tuned llama-tuned --rank 8 --out ad-extract
q $L extract --base llama-base --tuned llama-tuned --rank 16 --dynamic sv_fro:0.9 --save-modules --out ad-dyn
q $L extract --base llama-base --tuned llama-tuned2 --rank 8 --out ad-extract2
q $L resize ad-extract --rank 4 --out ad-resize
q $L merge --adapter ad-extract --adapter ad-extract2 --weight 0.7 --weight 0.5 --combine svd --rank 6 --out ad-svd
q $L merge --adapter ad-extract --adapter ad-extract2 --combine cat --out ad-cat
q $L merge --adapter ad-extract --adapter ad-extract2 --combine ties --density 0.5 --out ad-ties
q $L extract --base gpt2-base --tuned gpt2-tuned --rank 8 --out ad-gpt2
for a in extract dyn resize svd cat ties; do q $L merge --base llama-base --adapter ad-$a --out merged-$a; done
q $L merge --base gpt2-base --adapter ad-gpt2 --out merged-gpt2
for m in pissa milora olora; do q $L init --model llama-base --method $m --rank 4 --alpha 8 --out init-$m; done
q $L init --model llama-base --method pissa --rank 4 --niter 4 --targets q_proj,v_proj --out init-pissa-niter
q $L init --model gpt2-base --method pissa --rank 4 --out init-gpt2-pissa
# The methods saved in a PEFT tuner's own format (VeRA, RandLoRA, Uni-LoRA, VB-LoRA, TinyLoRA), each
# trained a few steps on a Llama with the fixture tokenizer, merged by lowrank, and converted to a LoRA.
tok="$here/../../test/fixtures/tokenizer"
cp "$tok/tokenizer.json" "$tok/tokenizer_config.json" llama-tok/
for i in $(seq 1 40); do echo '{"text": "the cat sees a red ball. a dog likes the old map."}'; done > train.jsonl
for m in vera randlora unilora vblora tinylora; do
  set_opts=()
  [ $m = vblora ] && set_opts=(--set vector_length=16)
  [ $m = unilora ] && set_opts=(--set theta_d_length=64)
  q $L train --model llama-tok --data train.jsonl --method $m --rank 4 "${set_opts[@]}" --targets q_proj,v_proj,down_proj --steps 6 --seq-len 12 --batch 2 --lr 5e-2 --out tr-$m
  q $L merge --base llama-tok --adapter tr-$m --out merged-tr-$m
  q $L convert-to-lora tr-$m --rank 64 --out lora-tr-$m   # 64 = min(in, out) here: exact for every method
done
# Generation: lowrank generate's greedy answers with an adapter applied unmerged (the LoRA and PiSSA
# adapters `lowrank start` writes, and a DoRA trained on the same sums) on held-out sums, which
# check.py decodes again with PEFT over transformers' generate.
builtin="$here/../../assets/builtin/model"
q $L start --steps 150 --out gen-start
node --input-type=module -e "
import { additionTask } from '$here/../../dist/src/train/mainJob.js';
const t = additionTask();
console.log(t.eval.slice(0, 40).map((e) => JSON.stringify({ prompt: e.prompt, completion: e.completion })).join('\\n'));
console.error(t.train.map((e) => JSON.stringify(e)).join('\\n'));" > gen-prompts.jsonl 2> gen-train.jsonl
q $L train --model "$builtin" --data gen-train.jsonl --method dora --rank 4 --targets all-linear --steps 150 --seq-len 32 --batch 16 --lr 3e-3 --out gen-dora
cp -r gen-start/lora gen-lora && cp -r gen-start/pissa gen-pissa
for a in lora pissa dora; do $L generate --model "$builtin" --adapter gen-$a --data gen-prompts.jsonl --max-new-tokens 4 --json > gen-$a.jsonl; done
echo "wrote $here/work"
