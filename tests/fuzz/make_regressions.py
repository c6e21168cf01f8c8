"""Writes tests/fuzz/regressions/: the inputs that once crashed a parser or were accepted silently (issue
"Bad input never crashes"), one file each, for the harnesses to run on every fuzz.sh run.

  python3 tests/fuzz/make_regressions.py MANIFEST   (MANIFEST: a seed manifest.json of the tiny GPT, tp = 2,
                                                    as scripts/fuzz.sh writes it under build-fuzz/seeds/)"""
import copy, json, os, struct, sys

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "regressions")


def put(harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(header, data=b""):
    h = header.encode()
    return struct.pack("<Q", len(h)) + h + data


# safetensors reader (and --init-from): headers that are not an object; sizes that wrap around
for h in ("safetensors", "hf"):
    put(h, "header_array", safetensors("[1,2]"))
    put(h, "header_string", safetensors('"shape"'))
    put(h, "entry_not_object", safetensors('{"wte.weight": 5}'))
put("safetensors", "numel_wraps_2p62x4", safetensors('{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}'))
put("safetensors", "numel_wraps_to_real", safetensors(
    '{"w":{"dtype":"F32","shape":[4611686018427387912,256],"data_offsets":[0,8192]}}', bytes(8192)))
put("safetensors", "offsets_wrap", safetensors('{"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,0]}}', bytes(4)))
put("safetensors", "offsets_short", safetensors('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', bytes(4)))

# token files: a header that is refused after the file was mapped (the mapping once leaked)
put("tokens", "llmc_version2", struct.pack("<3i", 20240520, 2, 16) + bytes(1024 - 12) + bytes(32))
put("tokens", "llmc_negative_count", struct.pack("<3i", 20240520, 1, -1) + bytes(1024 - 12))

# manifests: the seed manifest with one field damaged
seed = json.load(open(sys.argv[1]))
tensor = next(iter(seed["tensors"]))


def manifest(name, edit):
    m = copy.deepcopy(seed)
    edit(m)
    put("manifest", name, json.dumps(m, separators=(",", ":")))


manifest("shuffle_not_bool", lambda m: m["data"].__setitem__("shuffle", "yes"))
manifest("plan_without_zero", lambda m: m["plan"].pop("zero"))
manifest("slice_start_empty", lambda m: m["tensors"][tensor]["slices"][0].__setitem__("start", []))
manifest("slice_shape_one_extent", lambda m: m["tensors"][tensor]["slices"][0].__setitem__("shape", [32]))
manifest("slice_start_2p64m1", lambda m: m["tensors"][tensor]["slices"][0].__setitem__("start", [18446744073709551615]))
manifest("slice_shape_wraps", lambda m: m["tensors"][tensor]["slices"][0].__setitem__("shape", [2**62 + 8, 256]))
manifest("tensor_shape_wraps", lambda m: m["tensors"][tensor].__setitem__("shape", [2**62, 4]))
manifest("file_outside", lambda m: m["tensors"][tensor]["slices"][0].__setitem__("file", "../manifest.json"))
put("manifest", "top_level_array", "[1,2]")
print("wrote", out)
