"""Writes OUT/saved.pth and OUT/pytorch_model.bin with torch.save, and
OUT/expected.safetensors holding the same tensors made contiguous, for
test_pth_file.cpp to compare what our reader sees with what PyTorch saved."""
import collections
import sys

import torch
from safetensors.torch import save_file

out = sys.argv[1]
torch.manual_seed(0)
base = torch.randn(6, 10)
shared = torch.arange(40, dtype=torch.float32)
sd = collections.OrderedDict()
sd["f32"] = base
sd["f16"] = base.half()
sd["bf16"] = base.bfloat16()
sd["i64"] = torch.arange(12).reshape(3, 4)
sd["bool"] = base > 0
sd["transposed_slice"] = base.t()[2:7, 1:5]  # non-contiguous view with an offset
sd["share.a"] = shared[:20].view(4, 5)       # two tensors over one storage
sd["share.b"] = shared[10:40:3]
sd["f8"] = base.to(torch.float8_e4m3fn)
torch.save(sd, f"{out}/saved.pth")

module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
module_sd = module.state_dict()  # carries _metadata, as real checkpoints do
torch.save(module_sd, f"{out}/pytorch_model.bin")

expected = {k: v.contiguous().clone() for k, v in sd.items()}
expected.update({"module." + k: v.contiguous().clone() for k, v in module_sd.items()})
save_file(expected, f"{out}/expected.safetensors")
