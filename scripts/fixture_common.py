"""Helpers shared by every fixture script (scripts/make-*.py): pinned-version checks, seeding,
hashing, and the JSON layouts the reference files use. Each is written once, here."""

import hashlib
import json
import random
import re
import sys


def versions(pinned):
    """The installed version of each pinned package, as the package metadata says, and Python's."""
    from importlib.metadata import version

    v = {k: version(k) for k in pinned}
    v["python"] = "%d.%d.%d" % sys.version_info[:3]
    return v


def check_versions(pinned, allow_any, python=None):
    """Exits unless the installed versions are the pinned ones (a local tag such as `+cpu` aside;
    `python` pins Python's version too); with `allow_any` only warns. Returns `versions()`."""
    v = versions(pinned)
    want = dict(pinned, **({"python": python} if python else {}))
    bad = {k: (v[k], w) for k, w in want.items() if v[k].split("+")[0] != w}
    if bad:
        msg = "version mismatch (have, pinned): %r" % bad
        if allow_any:
            print("WARNING:", msg, file=sys.stderr)
        else:
            sys.exit(msg + "\nrerun with --any-version to ignore")
    return v


_threads_set = False


def seed_everything(seed, threads):
    """Seeds Python's, numpy's and torch's generators, and makes torch deterministic on `threads`
    threads. May be called again (a pipeline of several model families reseeds for each); the
    thread counts are set the first time only, as torch allows."""
    global _threads_set
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if not _threads_set:
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        _threads_set = True
    torch.use_deterministic_algorithms(True)


def sha256(path):
    """The SHA-256 of a file, in hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f]


def nonempty_lines(path):
    """The lines of a UTF-8 file that are not blank."""
    with open(path, encoding="utf-8") as f:
        return [line for line in f.read().split("\n") if line.strip()]


def _is_scalar(x):
    return x is None or isinstance(x, (str, int, float, bool))


def _one_line_ok(o):
    """Small containers (lists of numbers, records of scalars) go on one line."""
    if _is_scalar(o):
        return True
    if isinstance(o, list):
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in o):
            return True
        if all(isinstance(x, list) and all(_is_scalar(y) for y in x) for x in o):
            return len(o) <= 2
        return all(_is_scalar(x) for x in o) and len(json.dumps(o, ensure_ascii=False)) <= 200
    if isinstance(o, dict):
        return all(_is_scalar(v) or (isinstance(v, list) and _one_line_ok(v)) for v in o.values())
    return False


def _fmt(o, ind):
    dump = lambda x: json.dumps(x, ensure_ascii=False)
    if _one_line_ok(o) or not isinstance(o, (list, dict)) or len(o) == 0:
        return dump(o)
    pad = " " * (ind + 1)
    if isinstance(o, dict):
        body = ",\n".join(pad + dump(k) + ": " + _fmt(v, ind + 1) for k, v in o.items())
        return "{\n" + body + "\n" + " " * ind + "}"
    body = ",\n".join(pad + _fmt(v, ind + 1) for v in o)
    return "[\n" + body + "\n" + " " * ind + "]"


def write_json(path, obj):
    """JSON with one record / one id list per line (compact, diff-friendly)."""
    text = _fmt(obj, 0)
    assert json.loads(text) == obj
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def dumps_indented(obj, numbers_inline=False):
    """`json.dumps(indent=1)` with a final newline; with `numbers_inline`, each list of numbers on
    one line."""
    if not numbers_inline:
        return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"
    flat = {}

    def walk(x):
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            if x and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
                key = f"@@{len(flat)}@@"
                flat[key] = json.dumps(x, separators=(",", ":"))
                return key
            return [walk(v) for v in x]
        return x

    text = json.dumps(walk(obj), indent=1, ensure_ascii=False)
    for key, value in flat.items():
        text = text.replace(f'"{key}"', value, 1)
    return text + "\n"


def dumps_item_per_line(obj):
    """JSON with each item of a list (a case, a merge, an added token) on a line of its own, the
    top two levels of objects indented: reviewable in a diff, a third of the indented size."""

    def lines(value, indent):
        pad = " " * indent
        if isinstance(value, dict) and indent < 2:
            items = [f"{pad} {json.dumps(k)}: {lines(v, indent + 1).lstrip()}" for k, v in value.items()]
            return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(value, list) and value:
            items = [pad + " " + json.dumps(v, ensure_ascii=False) for v in value]
            return pad + "[\n" + ",\n".join(items) + "\n" + pad + "]"
        return pad + json.dumps(value, ensure_ascii=False)

    return lines(obj, 0) + "\n"


def dumps_records(obj, record_key):
    """`json.dumps(indent=1)` with each list of numbers, each list of 16-digit hex strings and
    each object whose first key matches the regex `record_key` on one line, and a final newline."""
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    text = re.sub(r"\[[-0-9.,e\s]*\]", lambda m: re.sub(r"\s+", "", m.group(0)), text)
    one_line = lambda m: "{" + re.sub(r"\n\s*", " ", m.group(1)) + "}"
    text = re.sub(r"\{\s*(\"%s\"[^{}]*?)\s*\}" % record_key, one_line, text)
    hex_list = r'\[(\s*"[0-9a-f]{16}",?)+\s*\]'
    text = re.sub(hex_list, lambda m: re.sub(r"\s+", "", m.group(0)), text)
    # The reformatting must not have touched any value (a string such as "[ 1 ]" could look
    # like a list).
    assert json.loads(text) == obj
    return text + "\n"
