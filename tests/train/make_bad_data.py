#!/usr/bin/env python3
"""make_bad_data.py DIR — token files the trainer must refuse (each with exit code 2 and a message that
names the file): shorter than one window, an llm.c shard of the wrong version, one whose header
disagrees with its size, and one holding a token outside a 256-token vocabulary."""
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
print("PASS")
