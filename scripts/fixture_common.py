"""Helpers shared by the fixture scripts: pinned-version checks, seeding, and the compact,
diff-friendly JSON layout every reference file uses."""

import json
import random
import sys


def versions(pinned):
    from importlib.metadata import version

    v = {k: version(k) for k in pinned}
    v["python"] = "%d.%d.%d" % sys.version_info[:3]
    return v


def check_versions(pinned, allow_any):
    v = versions(pinned)
    bad = {k: (v[k], want) for k, want in pinned.items() if v[k] != want}
    if bad:
        msg = "version mismatch (have, pinned): %r" % bad
        if allow_any:
            print("WARNING:", msg, file=sys.stderr)
        else:
            sys.exit(msg + "\nrerun with --any-version to ignore")


def seed_everything(seed, threads):
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f]


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
