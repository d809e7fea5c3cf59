"""Batch scoring on Ray Data: reading, scoring and writing on Ray, the same records as
the local runner, resume after SIGKILL, a real ``ray start --head`` cluster reached by
HOST:PORT and by ray://, token authentication, one-line errors for bad addresses, and
SIGTERM stopping a run in one line."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kefuqa.io.readers import InputError
from kefuqa.service.batch import EngineSpec, score_file
from kefuqa.settings import Settings
from kefuqa.text.pii import PiiMasker
from tests.service.conftest import free_port
from tests.service.test_batch import KEFUQA, archive_with_rejects, make_archive

pytest.importorskip("ray.data")

RAY = str(Path(sys.executable).parent / "ray")


@pytest.fixture(scope="module")
def ray_env() -> Iterator[dict[str, str]]:
    """Ray's files in a short temporary directory (its socket paths must stay under
    107 bytes), so nothing lands in /tmp/ray, and no token file in ~/.ray. The Ray a
    test starts in this process runs without token auth: Ray read its settings when
    it was first imported. The environment returned, for the commands a test runs,
    turns token auth on with a token of the test's own."""
    tmp = tempfile.mkdtemp(prefix="kq-ray-")
    env = {"RAY_TMPDIR": tmp, "KEFUQA_ENGINE": "rules", "RAY_USAGE_STATS_ENABLED": "0"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**env, "RAY_AUTH_MODE": "disabled"}.items():
            mp.setenv(key, value)
        yield {**os.environ, **env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    shutil.rmtree(tmp, ignore_errors=True)


def parts(folder: Path) -> bytes:
    """A directory's part files, concatenated in name order: the input order."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob("part-*")))


def local_reference(src: Path, out: Path) -> tuple[bytes, bytes]:
    rejects = out.with_name(out.name + ".rejects")
    score_file(src, EngineSpec("rules"), Settings(), output=out, rejects=rejects, progress=False)
    return out.read_bytes(), rejects.read_bytes() if rejects.exists() else b""


def test_ray_scores_the_same_records_as_the_local_runner(ray_env, tmp_path):
    from kefuqa.service.ray_runner import score_file_ray

    src = archive_with_rejects(tmp_path / "in.jsonl", 3000)
    records, rejects = local_reference(src, tmp_path / "local.jsonl")
    out = tmp_path / "scores"
    s = score_file_ray(src, EngineSpec("rules"), Settings(batch_size=100), output=out, workers=2, unit_items=500)
    assert (parts(out / "records"), parts(out / "rejects")) == (records, rejects)
    assert s.scored == records.count(b"\n") and s.rejected == rejects.count(b"\n") > 30
    # Sorted by input line, every record once: the order Ray finished in does not matter.
    markers = [json.loads(p.read_text()) for p in (out / "_units").glob("*.json")]
    lines = sorted(line for m in markers for line in range(m["first_line"], m["last_line"] + 1))
    assert lines == list(range(1, 3002)) and sum(m["rows"] for m in markers) == 3001
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["state"] == "finished" and (manifest["scored"], manifest["rejected"]) == (s.scored, s.rejected)


def test_gzip_and_parquet_inputs_in_a_directory_to_parquet_output(ray_env, tmp_path):
    from kefuqa.service.ray_runner import score_file_ray

    src = tmp_path / "in"
    src.mkdir()
    plain = archive_with_rejects(tmp_path / "a.jsonl", 700)
    with gzip.open(src / "a.jsonl.gz", "wb") as fh:
        fh.write(plain.read_bytes())
    rows = [json.loads(line) for line in make_archive(tmp_path / "b.jsonl", 300).read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist([{**r, "id": "p" + r["id"]} for r in rows]), src / "b.parquet")
    out = tmp_path / "scores.parquet"
    s = score_file_ray(src, EngineSpec("rules"), Settings(), output=out, workers=2, unit_items=128)
    got = pq.read_table(out / "records").to_pylist()  # pyarrow reads the parts in name order
    want = []
    for name in ("a.jsonl.gz", "b.parquet"):
        ref = tmp_path / f"ref-{name}.parquet"
        score_file(src / name, EngineSpec("rules"), Settings(), output=ref, rejects=tmp_path / "r.jsonl",
                   progress=False)
        want += pq.read_table(ref).to_pylist()
    assert got == want and s.scored == len(want) > 900
    # Rejects of the gzip file are numbered by its lines, in the first file's parts.
    assert sorted(p.name for p in (out / "rejects").iterdir())[0].startswith("part-00000-")


class _FailsOnPoison:
    def __call__(self):
        from kefuqa.models.baseline import RulesEngine

        inner = RulesEngine()

        class Engine:
            info = inner.info

            @staticmethod
            def score_batch(convs):
                if any(c.id.startswith("poison") for c in convs):
                    raise RuntimeError("engine failure on 13812345678")
                return inner.score_batch(convs)

        return Engine()


def test_the_actor_turns_an_engine_failure_into_a_masked_reject_and_masks_nothing_twice(tmp_path):
    """The read task masks; the actor scores what it gets as it is (an id's pseudonym is
    not pseudonymised again) and masks only the error text it makes."""
    from kefuqa.io.readers import read_conversations
    from kefuqa.service.ray_io import RayScorer, read_units

    src = make_archive(tmp_path / "in.jsonl", 20)
    lines = src.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace('"b-0000003"', '"poison-1"')
    lines[5] = lines[5].replace('"b-0000005"', '"c-13812345678"')
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    masker = PiiMasker()
    tables = list(read_units(read_conversations(src), 0, masker, 8))
    assert [t.num_rows for t in tables] == [8, 8, 4]
    assert "13812345678" not in str(tables[0].to_pydict())
    scored = RayScorer(_FailsOnPoison(), masker, batch_size=4)(pa.concat_tables(tables)).to_pydict()
    assert scored["line"] == list(range(1, 21))
    kinds = dict(zip(scored["line"], zip(scored["kind"], scored["text"])))
    kind, text = kinds[4]
    assert kind == "reject" and "could not score: RuntimeError" in text and "13812345678" not in text
    record = json.loads(kinds[6][1])
    assert record["id"] == masker.mask_id("c-13812345678")  # masked once, as by the local runner


def test_resume_after_sigkill_scores_every_record_exactly_once(ray_env, tmp_path):
    big = archive_with_rejects(tmp_path / "big.jsonl", 20_000)
    out = tmp_path / "scores"
    cmd = [KEFUQA, "score", str(big), "-o", str(out), "--engine", "ray", "--workers", "1", "--batch-size", "200"]
    proc = subprocess.Popen(cmd, env=ray_env, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not _finished_units(out):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started, at once
    proc.wait()
    assert not (out / "manifest.json").exists() or json.loads((out / "manifest.json").read_text())["state"] \
        == "running", "the run finished before it could be killed"
    res = subprocess.run(cmd + ["--resume"], env=ray_env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    kept = int(res.stderr.split("resumed with ")[1].split()[0])
    assert 0 < kept < 5  # 20,001 lines are 5 units of 4,096
    records, rejects = local_reference(big, tmp_path / "full.jsonl")
    assert parts(out / "records") == records and parts(out / "rejects") == rejects
    assert not list(out.rglob(".*.tmp"))


def test_sigterm_stops_a_ray_run_in_one_line_and_resume_finishes_it(ray_env, tmp_path):
    """Ray's core would answer SIGTERM with a stack dump and an abrupt exit; the command
    keeps its own handler, so `kill PID` stops it as Ctrl-C would: one line, exit 143."""
    big = archive_with_rejects(tmp_path / "big.jsonl", 20_000)
    out = tmp_path / "scores"
    cmd = [KEFUQA, "score", str(big), "-o", str(out), "--engine", "ray", "--workers", "1", "--batch-size", "200"]
    proc = subprocess.Popen(cmd, env=ray_env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and not (out / "_units").is_dir():
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # the driver alone
        _, err = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of its Ray is left
    ours = [line for line in err.splitlines() if "has constructor arguments in the object store" not in line]
    assert proc.returncode == 143 and len(ours) == 1, err
    assert ours[0] == f"kefuqa: terminated: {out} holds the units finished so far; run the same command " \
                      "with --resume to finish"
    assert json.loads((out / "manifest.json").read_text())["state"] == "running"
    res = subprocess.run(cmd + ["--resume"], env=ray_env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    records, rejects = local_reference(big, tmp_path / "full.jsonl")
    assert parts(out / "records") == records and parts(out / "rejects") == rejects


def _finished_units(out: Path) -> int:
    rows: dict[str, int] = {}
    whole: dict[str, int] = {}
    for path in (out / "_units").glob("*.json"):
        with contextlib.suppress(OSError, ValueError):  # one being renamed into place
            marker = json.loads(path.read_text())
            rows[marker["unit"]] = rows.get(marker["unit"], 0) + marker["rows"]
            whole[marker["unit"]] = marker["unit_rows"]
    return sum(rows[u] == whole[u] for u in rows)


@pytest.fixture(scope="module")
def cluster(ray_env) -> Iterator[tuple[str, str]]:
    """A real Ray cluster on loopback (``ray start --head --block``), token auth on;
    (GCS address, Ray Client address). Stopped by signalling the process this
    fixture started, never with ``ray stop``, which would stop every Ray here."""
    gcs, client = free_port(), free_port()
    temp = tempfile.mkdtemp(prefix="kq-rc-")
    cmd = [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
           f"--ray-client-server-port={client}", "--num-cpus=3", "--include-dashboard=false",
           "--object-store-memory=300000000", f"--temp-dir={temp}", "--disable-usage-stats"]
    log = Path(temp) / "head.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=ray_env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if not _wait_for_port(client, proc, 120):
            tail = log.read_text(errors="replace")[-300:] if proc.poll() is not None else "no client port in 120 s"
            pytest.skip(f"ray start --head did not come up: {tail}")
        yield f"127.0.0.1:{gcs}", f"ray://127.0.0.1:{client}"
    finally:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything of that cluster still running
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_port(port: int, proc: subprocess.Popen, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.5)
    return False


@pytest.mark.parametrize("kind", ["gcs", "client"])
def test_a_real_cluster_by_gcs_address_and_by_ray_client(cluster, ray_env, tmp_path, kind):
    src = archive_with_rejects(tmp_path / "in.jsonl", 1500)
    records, rejects = local_reference(src, tmp_path / "local.jsonl")
    address = cluster[0] if kind == "gcs" else cluster[1]
    out = tmp_path / "scores"
    res = subprocess.run([KEFUQA, "score", str(src), "-o", str(out), "--address", address, "--workers", "2"],
                         env=ray_env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert parts(out / "records") == records and parts(out / "rejects") == rejects


@pytest.mark.parametrize("kind", ["gcs", "client"])
@pytest.mark.parametrize("token", ["wrong", "none"])
def test_a_wrong_or_missing_token_is_one_line_and_exit_2(cluster, ray_env, tmp_path, kind, token):
    src = make_archive(tmp_path / "in.jsonl", 10)
    env = {**ray_env, "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    if token == "none":
        env = {k: v for k, v in ray_env.items() if not k.startswith("RAY_AUTH_")}
    address = cluster[0] if kind == "gcs" else cluster[1]
    res = subprocess.run([KEFUQA, "score", str(src), "-o", str(tmp_path / "o"), "--address", address],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith(f"kefuqa score: Ray at {address} refused the token")


def _silent_server() -> tuple[int, threading.Event]:
    """A port that accepts connections and never answers, as a non-Ray service might."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    stop = threading.Event()

    def serve() -> None:
        conns = []
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except TimeoutError:
                continue
        for c in conns:
            c.close()
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], stop


@pytest.mark.parametrize("address, message", [
    ("closed", "no Ray at 127.0.0.1:"),
    ("silent", "answers, but not as Ray"),
    ("ray://closed", "no Ray at ray://127.0.0.1:"),
    ("head", "expected HOST:PORT"),
])
def test_a_wrong_address_is_one_line_and_exit_2_without_ray_s_minute_of_retries(ray_env, tmp_path, address, message):
    src = make_archive(tmp_path / "in.jsonl", 5)
    port, stop = _silent_server()
    try:
        real = {"closed": f"127.0.0.1:{free_port()}", "silent": f"127.0.0.1:{port}",
                "ray://closed": f"ray://127.0.0.1:{free_port()}"}.get(address, address)
        # Ray's own retries would take a minute or more; the probe answers in seconds.
        res = subprocess.run([KEFUQA, "score", str(src), "-o", str(tmp_path / "o"), "--address", real],
                             env=ray_env, capture_output=True, text=True, timeout=45)
    finally:
        stop.set()
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert message in res.stderr


def test_a_file_unreadable_in_a_read_task_is_one_line_naming_it(ray_env, tmp_path):
    """Found by a read task on the cluster, not before the run: Ray's wrapping and its
    retry advice are dropped, the reader's own sentence is kept."""
    from kefuqa.service.ray_runner import score_file_ray

    src = tmp_path / "in"
    src.mkdir()
    data = gzip.compress(make_archive(tmp_path / "a.jsonl", 200).read_bytes())
    (src / "a.jsonl.gz").write_bytes(data[: len(data) // 2])  # cut off mid-stream
    with pytest.raises(InputError) as err:
        score_file_ray(src, EngineSpec("rules"), Settings(), output=tmp_path / "scores", workers=1)
    assert str(err.value).startswith(f"{(src / 'a.jsonl.gz').resolve()}: cannot read: ")
    assert "\n" not in str(err.value)


def test_resume_refuses_changed_inputs_and_a_foreign_directory(ray_env, tmp_path):
    from kefuqa.service.ray_output import plan_run

    src = make_archive(tmp_path / "in.jsonl", 50)
    out = tmp_path / "scores"
    plan_run([src], out, 16, resume=False)  # an interrupted run's manifest
    src.write_text(src.read_text() + src.read_text().splitlines()[0] + "\n")
    with pytest.raises(InputError, match="changed since the interrupted run"):
        plan_run([src], out, 16, resume=True)
    with pytest.raises(InputError, match="the unit size 16, not 32"):
        plan_run([src], out, 32, resume=True)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(InputError, match="not a kefuqa output directory"):
        plan_run([src], foreign, 16, resume=False)
    assert (foreign / "cat.jpg").exists()


def test_without_an_output_directory_the_cli_says_so(ray_env, tmp_path):
    src = make_archive(tmp_path / "in.jsonl", 5)
    res = subprocess.run([KEFUQA, "score", str(src), "--engine", "ray"], env=ray_env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2 and "give -o OUT" in res.stderr and res.stderr.count("\n") == 1
