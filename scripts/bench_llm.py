"""Reference side of scripts/bench-llm: llama.cpp (llama-cpp-python) on the same GGUF, the same
prompt tokens and greedy decoding of exactly NEW_TOKENS tokens.

    python scripts/bench_llm.py MODEL.gguf PROMPT_FILE NEW_TOKENS THREADS
"""
import json
import resource
import sys
import time

import numpy as np
from llama_cpp import Llama


def main(model, prompt_file, new_tokens, threads):
    load = time.perf_counter()
    llm = Llama(model_path=model, n_ctx=4096, n_threads=threads, n_batch=256, verbose=False)
    load_s = time.perf_counter() - load
    text = open(prompt_file, encoding="utf-8").read()
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    start = time.perf_counter()
    llm.eval(tokens)
    prompt_s = time.perf_counter() - start
    # Without logits_all, llama-cpp-python keeps no scores of its own (Llama.scores stays
    # unwritten): read the last position's logits from the context, as its samplers do.
    def last_logits():
        return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))

    start = time.perf_counter()
    for _ in range(new_tokens):
        llm.eval([int(last_logits().argmax())])
    gen_s = time.perf_counter() - start
    print(json.dumps({"system": "llama.cpp", "prompt_tokens": len(tokens),
                      "prompt_tok_s": round(len(tokens) / prompt_s, 1), "generated": new_tokens,
                      "gen_tok_s": round(new_tokens / gen_s, 1), "load_s": round(load_s, 2),
                      # Linux reports the peak in KiB.
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
