#!/usr/bin/env python3
"""make_bad_data.py DIR — token files the trainer must refuse (each with exit code 2 and a message that
names the file): shorter than one window, an llm.c shard of the wrong version, one whose header
disagrees with its size, and one holding a token outside a 256-token vocabulary; and safetensors files
--init-from must refuse: a header that is a JSON array, and one whose element count wraps around 64 bits."""
import os, struct, sys

d = sys.argv[1]
os.makedirs(d, exist_ok=True)


def shard(path, tokens, version=1, claimed=None):
    head = [20240520, version, len(tokens) if claimed is None else claimed] + [0] * 253
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", *head) + struct.pack(f"<{len(tokens)}H", *tokens))


open(os.path.join(d, "short.txt"), "wb").write(b"too short")
shard(os.path.join(d, "version2.bin"), list(range(100)) * 5, version=2)
shard(os.path.join(d, "size_mismatch.bin"), list(range(100)) * 5, claimed=900)
shard(os.path.join(d, "big_token.bin"), [1] * 77 + [300] + [2] * 400)


def safetensors(path, header, data=b""):
    h = header.encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


safetensors(os.path.join(d, "header_array.safetensors"), "[1,2]")
safetensors(os.path.join(d, "numel_wraps.safetensors"),
            '{"wte.weight":{"dtype":"F32","shape":[4611686018427387912,256],"data_offsets":[0,8192]}}', bytes(8192))
print("PASS")
