"""API keys: only SHA-256 hashes are stored (environment or a file); the
plain key is shown once, when it is made (`kefuqa keys new`)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path


class KeyFileError(Exception):
    pass


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    key = "kq_" + secrets.token_urlsafe(24)
    return key, hash_key(key)


def load_key_hashes(env_value: str | None, file: Path | None) -> frozenset[str]:
    hashes = [h.strip() for h in (env_value or "").split(",") if h.strip()]
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise KeyFileError(f"{file}: cannot read API key file: {exc}") from exc
        hashes += [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]
    for h in hashes:
        if len(h) != 64 or any(c not in "0123456789abcdef" for c in h.lower()):
            raise KeyFileError(f"not a SHA-256 hex digest: {h[:12]}… (store hashes from `kefuqa keys new`)")
    return frozenset(h.lower() for h in hashes)


def key_ok(presented: str | None, hashes: frozenset[str]) -> bool:
    if not presented:
        return False
    digest = hash_key(presented)
    return any(hmac.compare_digest(digest, h) for h in hashes)
