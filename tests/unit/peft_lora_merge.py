"""The reference's LoRA merge, for tests/unit/test_lora_merge.cpp.

  peft_lora_merge.py DIT_DIR LORA_FILE OUT_FILE

Does what the reference's add_lora_to_model does (causal_s2v_pipeline.py), with
peft at the reference's pin, on a module tree rebuilt from the DiT's
safetensors shards: every module with a 2-D "<module>.weight" is an nn.Linear
(the S2V DiT has no other 2-D weights), everything else a plain parameter.

  - rank and alpha as the reference's training yaml gives them (lora_rank 128,
    lora_alpha 64), unless the file's __metadata__ says otherwise
    ("r", "lora_alpha": la-mkcheckpoint writes them for its small files);
  - LoraConfig(target_modules="q,k,v,o,ffn.0,ffn.2".split(","),
    init_lora_weights=True), get_peft_model: peft picks the modules by suffix;
  - the file's keys prefixed with "base_model.model." when the first lacks it,
    load_state_dict(strict=False), merge_and_unload().

It refuses (exit 1) when the file has keys peft does not take, or when a
wrapped module got no weights from the file, where the reference would only
print counts. It also recomputes every merged weight by hand, W + alpha/r * B@A
in float32 rounded to W's dtype, and requires peft's result to equal it.

OUT_FILE (safetensors): "<module>.weight" merged, for each module that got a
LoRA; __metadata__ "rank", "alpha", "modules".
"""
import glob
import json
import os
import sys
import warnings

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

TARGETS = "q,k,v,o,ffn.0,ffn.2"  # liveavatar/configs/s2v_causal_sft.yaml
YAML_RANK, YAML_ALPHA = 128, 64.0


def load_dit(dit_dir):
    index = os.path.join(dit_dir, "diffusion_pytorch_model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(dit_dir, "*.safetensors")))
    state = {}
    for name in files:
        state.update(load_file(os.path.join(dit_dir, name)))
    return state


def child(root, path):
    m = root
    for part in path.split(".") if path else []:
        if not hasattr(m, part):
            m.add_module(part, torch.nn.Module())
        m = getattr(m, part)
    return m


def build_model(state):
    root = torch.nn.Module()
    linear = {k[: -len(".weight")] for k, v in state.items() if k.endswith(".weight") and v.dim() == 2}
    for module in sorted(linear):
        parent, _, name = module.rpartition(".")
        w = state[module + ".weight"]
        bias = module + ".bias" in state
        layer = torch.nn.Linear(w.shape[1], w.shape[0], bias=bias, device="meta", dtype=w.dtype)
        layer.weight = torch.nn.Parameter(w.clone(), requires_grad=False)
        if bias:
            layer.bias = torch.nn.Parameter(state[module + ".bias"].clone(), requires_grad=False)
        child(root, parent).add_module(name, layer)
    for key, t in state.items():
        module, _, name = key.rpartition(".")
        if module in linear:
            continue
        child(root, module).register_parameter(name, torch.nn.Parameter(t.clone(), requires_grad=False))
    return root


def main(dit_dir, lora_file, out_file):
    from peft import LoraConfig, get_peft_model

    base = load_dit(dit_dir)
    with safe_open(lora_file, framework="pt") as f:
        meta = f.metadata() or {}
    lora = load_file(lora_file)
    rank = int(meta.get("r", YAML_RANK))
    alpha = float(meta.get("lora_alpha", YAML_ALPHA))

    model = build_model(base)
    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=True, target_modules=TARGETS.split(","))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(model, config)
    if not next(iter(lora)).startswith("base_model.model."):
        lora = {f"base_model.model.{k}": v for k, v in lora.items()}
    missing, unexpected = model.load_state_dict(lora, strict=False)
    if unexpected:
        sys.exit(f"{len(unexpected)} keys of {lora_file} fit no module peft wrapped, e.g. {unexpected[0]}")
    missing_lora = [k for k in missing if ".lora_" in k]
    if missing_lora:
        sys.exit(f"{len(missing_lora)} LoRA weights of the wrapped model are not in {lora_file}, e.g. {missing_lora[0]}")
    wrapped = sorted(
        name[len("base_model.model."):]
        for name, m in model.named_modules()
        if hasattr(m, "lora_A") and "default" in m.lora_A
    )
    merged = model.merge_and_unload().state_dict()

    out = {}
    for module in wrapped:
        w = base[module + ".weight"]
        a = lora[f"base_model.model.{module}.lora_A.default.weight"].float()
        b = lora[f"base_model.model.{module}.lora_B.default.weight"].float()
        by_hand = (w.float() + (b @ a) * (alpha / rank)).to(w.dtype)
        got = merged[module + ".weight"]
        if not torch.equal(got, by_hand):
            sys.exit(f"peft's merge of {module} is not W + alpha/r * B@A: max |d| {(got.float() - by_hand.float()).abs().max()}")
        out[module + ".weight"] = got.contiguous()
    save_file(out, out_file, metadata={"rank": str(rank), "alpha": repr(alpha), "modules": str(len(wrapped))})


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
