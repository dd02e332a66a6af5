"""Merge safetensors shard files into one model.safetensors without torch (pure Python).

Owns: the byte-level safetensors format handling needed on the CPU machine, where the model comes
back from the GPU machine in shards of <= 15 MiB. Tensors are written sorted by name, 8-byte
aligned header, data copied byte for byte. Usage: merge_shards.py OUT.safetensors SHARD...
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", None)
    return header, data, meta


def merge(out, shards):
    tensors, metadata = {}, {"format": "pt"}
    for s in shards:
        header, data, meta = read(s)
        for name, info in header.items():
            if name in tensors:
                raise ValueError(f"tensor {name} appears in two shards")
            a, b = info["data_offsets"]
            tensors[name] = (info["dtype"], info["shape"], data[a:b])
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        dt, shape, blob = tensors[name]
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    return len(tensors), off


if __name__ == "__main__":
    n, size = merge(sys.argv[1], sys.argv[2:])
    print(f"{n} tensors, {size} bytes of data -> {sys.argv[1]}")
