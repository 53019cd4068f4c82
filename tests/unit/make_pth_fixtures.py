"""Cross-checks la::io's .pth reader and writer against real PyTorch.

  make DIR              torch.save fixtures into DIR plus DIR/expected.txt,
                        the tensors each file should parse into
  verify FILE EXPECTED  torch.load(FILE, weights_only=True) must give exactly
                        the tensors in EXPECTED (same line format), and
                        torch.save of them must give the same bytes as FILE
                        apart from the random .data/serialization_id
  zipcheck FILE         Python's zipfile must read FILE with valid CRCs

expected.txt, one line each, fields separated by single spaces:
  file NAME
  tensor NAME DTYPE STORAGE_OFFSET RANK SHAPE... STRIDES... HEX
  skipped NAME
HEX is the tensor's bytes in logical (row-major) order. Exits nonzero on a
mismatch, printing why.
"""

import collections
import os
import struct
import sys
import tempfile
import zipfile

import torch

DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
    torch.bfloat16: "BF16", torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2", torch.int64: "I64", torch.int32: "I32",
    torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}
BY_NAME = {v: k for k, v in DTYPES.items()}


def raw(t):
    """The tensor's bytes in logical order."""
    return bytes(t.contiguous().clone().untyped_storage().tolist())


def tensor_line(name, t):
    fields = ["tensor", name, DTYPES[t.dtype], str(t.storage_offset()), str(t.dim())]
    fields += [str(s) for s in t.shape] + [str(s) for s in t.stride()]
    fields.append(raw(t).hex() or "-")
    return " ".join(fields)


def pattern(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    if dtype.is_floating_point:
        return (torch.randn(shape, generator=g) * 3).to(dtype)
    info = torch.iinfo(dtype)
    return torch.randint(info.min, info.max, shape, generator=g, dtype=torch.int64).to(dtype)


def make(out_dir):
    lines = []

    def save(file_name, obj, tensors, skipped=(), **kw):
        torch.save(obj, os.path.join(out_dir, file_name), **kw)
        lines.append("file " + file_name)
        lines.extend(tensor_line(n, t) for n, t in tensors)
        lines.extend("skipped " + n for n in skipped)

    # Every dtype, plus a scalar and an empty tensor.
    basic = collections.OrderedDict()
    for i, dtype in enumerate(DTYPES):
        basic["t_" + DTYPES[dtype].lower()] = pattern((3, 5), dtype, i)
    basic["scalar"] = torch.tensor(2.5)
    basic["empty"] = torch.zeros(0, 3, dtype=torch.float16)
    save("basic.pth", basic, basic.items())

    # Views: a transposed slice, two tensors on one storage, a tied weight.
    base = pattern((6, 8), torch.float32, 100)
    shared = pattern((4, 6), torch.bfloat16, 101)
    tied = pattern((5,), torch.float16, 102)
    views = {
        "transposed_slice": base.t()[2:6, 1:5],
        "shared_a": shared,
        "shared_b": shared.view(6, 4)[1:, ::2],
        "tied_1": tied,
        "tied_2": tied,
        "expanded": pattern((3, 1), torch.float32, 103).expand(3, 4),
    }
    save("views.pth", views, views.items())

    # Nested dicts are flattened; non-tensor leaves are skipped.
    inner = pattern((2, 2), torch.float32, 200)
    nested = {
        "model": {"encoder": {"w": inner}, "b": pattern((3,), torch.float16, 201)},
        "epoch": 7, "name": "run", "lr": 0.1, "flags": [1, 2], "none": None,
        "optimizer": {"state": {0: {"exp_avg": pattern((2,), torch.float32, 202)}}},
    }
    save("nested.pth", nested,
         [("model.encoder.w", inner), ("model.b", nested["model"]["b"]),
          ("optimizer.state.0.exp_avg", nested["optimizer"]["state"][0]["exp_avg"])],
         ["epoch", "name", "lr", "flags", "none"])

    # A module's state_dict (an OrderedDict with _metadata), and Parameters.
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3), torch.nn.BatchNorm1d(3))
    sd = module.state_dict()
    save("module.pth", sd, sd.items())
    params = {"p": torch.nn.Parameter(pattern((2, 3), torch.float32, 300)),
              "frozen": torch.nn.Parameter(pattern((4,), torch.bfloat16, 301), requires_grad=False)}
    save("params.pth", params, [(n, p.detach()) for n, p in params.items()])

    # Protocol 4: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL.
    p4 = {"a": pattern((3, 3), torch.float32, 400), "b": pattern((2,), torch.float8_e4m3fn, 401)}
    save("proto4.pth", p4, p4.items(), pickle_protocol=4)

    with open(os.path.join(out_dir, "expected.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def parse_expected(path):
    tensors = collections.OrderedDict()
    for line in open(path):
        f = line.split()
        if not f or f[0] != "tensor":
            continue
        name, dtype, offset, rank = f[1], BY_NAME[f[2]], int(f[3]), int(f[4])
        shape = [int(x) for x in f[5:5 + rank]]
        data = b"" if f[5 + 2 * rank] == "-" else bytes.fromhex(f[5 + 2 * rank])
        tensors[name] = (dtype, shape, data)
    return tensors


def fail(msg):
    print("MISMATCH: " + msg)
    sys.exit(1)


def normalized(data, id_text):
    """The file's bytes with the serialization id and its CRC blanked out."""
    crc = struct.pack("<I", zipfile.crc32(id_text))
    return data.replace(id_text, b"0" * len(id_text)).replace(crc, b"\0\0\0\0")


def verify(path, expected_path):
    expected = parse_expected(expected_path)
    loaded = torch.load(path, weights_only=True)
    if not isinstance(loaded, collections.OrderedDict):
        fail("loaded %s, not an OrderedDict" % type(loaded))
    if list(loaded) != list(expected):
        fail("keys %s != %s" % (list(loaded), list(expected)))
    for name, (dtype, shape, data) in expected.items():
        t = loaded[name]
        if t.dtype != dtype or list(t.shape) != shape:
            fail("%s: %s %s != %s %s" % (name, t.dtype, list(t.shape), dtype, shape))
        if raw(t) != data:
            fail("%s: bytes differ" % name)

    # torch.save of the same dict must give our bytes (the id aside).
    with tempfile.TemporaryDirectory() as d:
        ref = os.path.join(d, os.path.basename(path))
        torch.save(loaded, ref)
        ours, theirs = open(path, "rb").read(), open(ref, "rb").read()
        prefix = zipfile.ZipFile(path).namelist()[0].split("/")[0]
        id_ours = zipfile.ZipFile(path).read(prefix + "/.data/serialization_id")
        id_theirs = zipfile.ZipFile(ref).read(prefix + "/.data/serialization_id")
        if normalized(ours, id_ours) != normalized(theirs, id_theirs):
            a, b = normalized(ours, id_ours), normalized(theirs, id_theirs)
            at = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
            where = [i.filename for i in zipfile.ZipFile(ref).infolist() if i.header_offset <= at]
            fail("bytes differ from torch.save's at offset %d (sizes %d, %d), after the start of %s"
                 % (at, len(a), len(b), where[-1] if where else "the first record"))
    print("OK")


def zipcheck(path):
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
        if bad is not None:
            fail("bad CRC in " + bad)
        for info in z.infolist():
            z.read(info.filename)
    print("OK")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "verify":
        verify(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "zipcheck":
        zipcheck(sys.argv[2])
    else:
        sys.exit(__doc__)
