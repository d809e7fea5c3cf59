"""Versioned models on disk with a promotion gate.

Layout under ``KEFUQA_HOME/registry``::

    <version>/metadata.json   name, version, base, data hash, split hash, metrics, created
    <version>/...             the model's files
    champion.json             {"current": version, "history": [older champions],
                               "challenger": the latest candidate not promoted, or null}

A candidate becomes the champion only when it is not worse than the current
one on the same evaluation set (see ``compare``): the held-out writers of
``training/data/outside`` (``eval_set: outside`` in the metadata), whose
conversations no model trains on, or the fixed test split for a model trained
without them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kefuqa.contract import LABELS

# A candidate may lose at most this much macro-F1 on any one label.
PER_LABEL_TOLERANCE = 0.02


class RegistryError(Exception):
    pass


ROLES = ("teacher", "student")


def encoder_info(metadata: dict[str, Any]) -> dict[str, Any]:
    """The model's ``encoder`` entry (``role``, ``layers``, …); models registered without one
    ran the full encoder, so they are 12-layer teachers."""
    return metadata.get("encoder") or {"role": "teacher", "layers": 12}


def encoder_role(metadata: dict[str, Any]) -> str:
    """``teacher`` or ``student``."""
    return str(encoder_info(metadata)["role"])


@dataclass(frozen=True)
class Comparison:
    rows: list[tuple[str, float | None, float]]  # label, current, candidate
    better_or_equal: bool
    reason: str

    def table(self) -> str:
        lines = [f"{'label':<20}{'current':>10}{'candidate':>11}{'delta':>9}"]
        for name, cur, cand in self.rows:
            c = f"{cur:.4f}" if cur is not None else "–"
            d = f"{cand - cur:+.4f}" if cur is not None else ""
            lines.append(f"{name:<20}{c:>10}{cand:>11.4f}{d:>9}")
        return "\n".join(lines)


def compare(current: dict[str, Any] | None, candidate: dict[str, Any]) -> Comparison:
    """Macro-F1 per label on the evaluation set both were measured on; refused when
    the mean drops, any label drops by more than PER_LABEL_TOLERANCE, or the sets differ."""
    cand = candidate["metrics"]["macro_f1"]
    if current is None:
        return Comparison([(k, None, cand[k]) for k in LABELS], True, "no current model")
    cur = current["metrics"]["macro_f1"]
    rows = [(k, cur[k], cand[k]) for k in LABELS]
    if current.get("split_hash") != candidate.get("split_hash"):
        return Comparison(rows, False, "measured on different evaluation sets (split hash differs); "
                                       "evaluate both on the same held-out writers")
    mean_cur = sum(cur[k] for k in LABELS) / len(LABELS)
    mean_cand = sum(cand[k] for k in LABELS) / len(LABELS)
    if mean_cand < mean_cur:
        return Comparison(rows, False, f"mean macro-F1 {mean_cand:.4f} < current {mean_cur:.4f}")
    worse = [k for k in LABELS if cand[k] < cur[k] - PER_LABEL_TOLERANCE]
    if worse:
        return Comparison(rows, False, f"worse on {', '.join(worse)} by more than {PER_LABEL_TOLERANCE}")
    return Comparison(rows, True, f"mean macro-F1 {mean_cand:.4f} ≥ current {mean_cur:.4f}")


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _champion_file(self) -> Path:
        return self.root / "champion.json"

    def _state(self) -> dict[str, Any]:
        f = self._champion_file()
        return json.loads(f.read_text(encoding="utf-8")) if f.exists() else {"current": None, "history": []}

    def _save_state(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._champion_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        tmp.replace(self._champion_file())  # atomic: never a half-written pointer

    def path(self, version: str) -> Path:
        p = self.root / version
        if not (p / "metadata.json").exists():
            raise RegistryError(f"no model version {version!r} in {self.root} (see `kefuqa models list`)")
        return p

    def metadata(self, version: str) -> dict[str, Any]:
        return json.loads((self.path(version) / "metadata.json").read_text(encoding="utf-8"))

    def versions(self) -> list[dict[str, Any]]:
        if not self.root.exists():
            return []
        metas = [json.loads(p.read_text(encoding="utf-8")) for p in self.root.glob("*/metadata.json")]
        return sorted(metas, key=lambda m: m["created"])

    def current(self) -> str | None:
        return self._state()["current"]

    def challenger(self) -> str | None:
        return self._state().get("challenger")

    def resolve(self, ref: str | None) -> str:
        """A version from ``champion`` (or None), ``challenger``, a role (``teacher`` or
        ``student``: see ``by_role``) or a version string."""
        if ref in (None, "champion"):
            current = self.current()
            if current is None:
                raise RegistryError(f"no champion model in {self.root}; run `kefuqa models build-default`")
            return current
        if ref == "challenger":
            challenger = self.challenger()
            if challenger is None:
                raise RegistryError("no challenger: every trained candidate has been promoted or none was trained")
            return challenger
        if ref in ROLES:
            return self.by_role(ref)
        self.path(ref)
        return ref

    def by_role(self, role: str) -> str:
        """The champion when its encoder has this role (``teacher``: the full 12-layer encoder;
        ``student``: a distilled one), else the most recently added version that has it."""
        if role not in ROLES:
            raise RegistryError(f"unknown model role {role!r}: choose {' or '.join(ROLES)}")
        current = self.current()
        if current is not None and encoder_role(self.metadata(current)) == role:
            return current
        found = [m["version"] for m in self.versions() if encoder_role(m) == role]
        if not found:
            raise RegistryError(f"no {role} model in {self.root}; run `kefuqa models build-default` "
                                "(builds the bundled teacher and student)")
        return found[-1]

    def set_challenger(self, version: str) -> None:
        self.path(version)
        state = self._state()
        state["challenger"] = version if version != state["current"] else None
        self._save_state(state)

    def add(self, model_dir: Path, metadata: dict[str, Any]) -> str:
        version = metadata["version"]
        dest = self.root / version
        if dest.exists():
            raise RegistryError(f"version {version!r} already registered")
        shutil.copytree(model_dir, dest)
        (dest / "metadata.json").write_text(json.dumps(metadata, ensure_ascii=False, indent=2), encoding="utf-8")
        return version

    def promote(self, version: str, force: bool = False) -> Comparison:
        state = self._state()
        candidate = self.metadata(version)
        current = self.metadata(state["current"]) if state["current"] else None
        result = compare(current, candidate)
        if result.better_or_equal or force:
            if state["current"] and state["current"] != version:
                state["history"].append(state["current"])
            state["current"] = version
            if state.get("challenger") == version:
                state["challenger"] = None
            self._save_state(state)
        return result

    def rollback(self) -> str:
        state = self._state()
        if not state["history"]:
            raise RegistryError("nothing to roll back to: no earlier champion")
        # The demoted model stays at hand as the challenger, to be evaluated or promoted again.
        state["challenger"], state["current"] = state["current"], state["history"].pop()
        self._save_state(state)
        return state["current"]
