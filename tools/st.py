"""Minimal safetensors reader/writer (no dependency on the `safetensors` package).

Format: u64 little-endian header length N, then N bytes of JSON
{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the raw little-endian tensor bytes (offsets relative to the end of the header).

    load(path) -> dict name -> torch.Tensor   (also load_numpy for numpy arrays, bf16 as uint16)
    save(path, tensors, metadata=None)        tensors: dict name -> torch.Tensor or numpy array
"""
import json
import os
import struct

import numpy as np

_NP = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n).decode("utf-8"))
    return header, 8 + n


def load_numpy(path):
    """dict name -> (numpy array, dtype string); BF16 comes back as raw uint16."""
    header, base = read_header(path)
    out = {}
    with open(path, "rb") as f:
        data = f.read()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(data, dtype=_NP[info["dtype"]], count=(e - b) // np.dtype(_NP[info["dtype"]]).itemsize,
                            offset=base + b).reshape(info["shape"])
        out[name] = (arr.copy(), info["dtype"])
    return out


def load(path, device="cpu"):
    import torch
    out = {}
    for name, (arr, dt) in load_numpy(path).items():
        if dt == "BF16":
            t = torch.from_numpy(arr.astype(np.int16)).view(torch.bfloat16)
        else:
            t = torch.from_numpy(arr)
        out[name] = t.to(device)
    return out


def metadata(path):
    return read_header(path)[0].get("__metadata__", {})


def _to_numpy(t):
    """-> (numpy array, dtype string)"""
    if isinstance(t, np.ndarray):
        arr = t
    else:
        import torch
        t = t.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(np.uint16), "BF16"
        arr = t.numpy()
    rev = {np.dtype(v): k for k, v in _NP.items() if k != "BF16"}
    return np.ascontiguousarray(arr), rev[arr.dtype]


def save(path, tensors, metadata=None):
    """Write atomically (temporary name, then rename)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name, t in tensors.items():
        arr, dt = _to_numpy(t)
        b = arr.tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
