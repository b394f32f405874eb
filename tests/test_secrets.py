"""A secret planted in every channel a user gives pricecurate turns up in nothing it writes, prints or pushes.

The channels: credential settings of every connector family (given as config), an input URI and a reused
output's URI with user:password (served by Hadoop's viewfs, which keeps a URI's authority as it is), a
download's base URL with user:password, and HF_TOKEN. The commands: download, run (twice, the second reusing
the first's items), baseline, export, evaluate and push to a stand-in Hub on loopback.
"""

from __future__ import annotations

import csv
import gzip
import json
import secrets
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import split_rows
from test_hub import FILES, FakeHubHandler, ServerState, server  # noqa: F401 - server is a fixture

from pricecurate.cli.main import main
from pricecurate.masking import is_secret_key, mask_settings, redact_text, redact_uri
from pricecurate.sample import write_sample

CATEGORIES = ["Automotive", "Electronics", "Toys_and_Games"]

# One credential setting per family: Azure (ABFS key, WASB SAS, OAuth client), S3A (SSE-C key, per-bucket secret,
# session token), GCS (service account key), Spark (RPC auth, SSL), Hadoop's key stores, and a URI in a value.
SETTINGS = (
    "spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net",
    "spark.hadoop.fs.azure.sas.box.acct.blob.core.windows.net",
    "spark.hadoop.fs.azure.account.oauth2.client.secret",
    "spark.hadoop.fs.s3a.encryption.key",
    "spark.hadoop.fs.s3a.bucket.prices.secret.key",
    "spark.hadoop.fs.s3a.session.token",
    "spark.hadoop.fs.gs.auth.service.account.private.key",
    "spark.authenticate.secret",
    "spark.ssl.keyStorePassword",
    "spark.hadoop.hadoop.security.credential.provider.path",
)


def _secret(channel: str) -> str:
    return f"PLANTED{channel}{secrets.token_hex(6)}"


def test_secret_names_of_every_connector_family():
    for name in (*SETTINGS, "spark.hadoop.fs.gs.auth.service.account.private.key.id", "fs.s3n.awsAccessKeyId",
                 "spark.ssl.ui.trustStorePassword", "es.net.http.auth.pass", "spark.hadoop.fs.s3a.access.key",
                 "fs.azure.sas.fixed.token", "spark.hadoop.parquet.encryption.key.list"):
        assert is_secret_key(name), name
    for name in ("spark.executor.memory", "spark.io.encryption.keySizeBits", "spark.ssl.keyStore", "max_tokens",
                 "tokenizer", "spark.hadoop.fs.gs.auth.service.account.json.keyfile", "spark.driver.bindAddress"):
        assert not is_secret_key(name), name
    shown = mask_settings({"spark.hadoop.fs.azure.sas.c.a.blob.core.windows.net": "sv=1&sig=x",
                           "spark.eventLog.dir": "s3a://AKIA:k3y@logs/events", "spark.executor.cores": "2"})
    assert shown == {"spark.hadoop.fs.azure.sas.c.a.blob.core.windows.net": "***",
                     "spark.eventLog.dir": "s3a://***@logs/events", "spark.executor.cores": "2"}


@pytest.mark.parametrize("uri, shown", [
    ("s3a://AKIAKEY:s3cr3t@bucket/raw", "s3a://***@bucket/raw"),
    ("s3a://AKIAKEY:ab/cd+ef@bucket/raw", "s3a://***@bucket/raw"),  # a secret with a slash in it
    ("https://acct.blob.core.windows.net/c/f?sv=2024&sig=s3cr3t%2B&se=1",
     "https://acct.blob.core.windows.net/c/f?sv=2024&sig=***&se=1"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA&X-Amz-Signature=s3cr3t&X-Amz-Date=1",
     "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Date=1"),
    ("https://mirror.example/raw?token=s3cr3t", "https://mirror.example/raw?token=***"),
    ("hdfs://namenode:8020/user/a@b/raw", "hdfs://namenode:8020/user/a@b/raw"),  # a port, and an @ in the path
    ("/local/path", "/local/path"),
])
def test_uri_credentials_of_every_kind_are_masked(uri, shown):
    assert redact_uri(uri) == shown
    assert redact_text(f"cannot read {uri}; access denied") == f"cannot read {shown}; access denied"


def test_no_planted_secret_reaches_any_file_output_or_upload(spark, server, tmp_path, monkeypatch, capfd):  # noqa: F811
    base_url, hub = server
    write_sample(tmp_path / "sample", records_per_category=40, categories=CATEGORIES)
    for name in CATEGORIES:  # the stand-in Hub serves the raw files the run reads
        hub.files[f"meta_{name}.jsonl"] = (tmp_path / "sample" / f"meta_{name}.jsonl").read_bytes()
    planted = {key: _secret(f"S{index}") for index, key in enumerate(SETTINGS)}
    channels = {"input": _secret("INPUT"), "reuse": _secret("REUSE"), "mirror": _secret("MIRROR"),
                "hf_token": _secret("HFTOKEN"), "setting_uri": _secret("URIVALUE")}
    planted["spark.eventLog.dir"] = f"s3a://AKIAEVENTS:{channels['setting_uri']}@logs/events"
    monkeypatch.setenv("HF_TOKEN", channels["hf_token"])
    monkeypatch.delenv("HF_ENDPOINT", raising=False)

    raw, out1, out2 = tmp_path / "raw", tmp_path / "out1", tmp_path / "out2"
    mirror = base_url.replace("http://", f"http://mirror:{channels['mirror']}@")
    assert main(["download", "--categories", ",".join(CATEGORIES), "--base-url", mirror, str(raw)]) == 0
    # Inputs and a previous output behind URIs with user:password: viewfs keeps the whole authority.
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    input_uri = f"viewfs://AKIAINPUT:{channels['input']}@inputs/raw"
    reuse_uri = f"viewfs://AKIAREUSE:{channels['reuse']}@outputs/out1"
    mounts = {f"fs.viewfs.mounttable.AKIAINPUT:{channels['input']}@inputs.link./raw": raw.as_uri(),
              f"fs.viewfs.mounttable.AKIAREUSE:{channels['reuse']}@outputs.link./out1": out1.as_uri()}
    for key, target in mounts.items():
        hadoop.set(key, target)
    settings = [arg for key, value in planted.items() for arg in ("--set", f"{key}={value}")]
    common = ["--input", input_uri, "--categories", ",".join(CATEGORIES), "--set", "split.train=30",
              "--set", "split.test=10", *settings]
    try:
        assert main(["run", *common, "--output", str(out1), "--no-report", "--log", str(tmp_path / "run1.log")]) == 0
        assert main(["run", *common, "--output", str(out2), "--reuse-items", reuse_uri, "--set", "baseline=true",
                     "--log", str(tmp_path / "run2.log")]) == 0
        assert main(["baseline", str(out2)]) == 0
        assert main(["export", str(out2), "--format", "messages", "--dest", str(tmp_path / "export")]) == 0
        predictions = tmp_path / "predictions.csv"
        with open(predictions, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["parent_asin", "price"])
            writer.writerows((row[3], 10.0) for row in split_rows(str(out2), "test"))
        assert main(["evaluate", str(out2), str(predictions)]) == 0
        hub.accept_pushes = True
        monkeypatch.setenv("HF_ENDPOINT", base_url.removesuffix("/raw"))  # the stand-in is the Hub now
        assert main(["push", str(out2), "me/prices"]) == 0
    finally:
        # The CLI put them into the shared session's conf, the way getOrCreate does: take them out the same way.
        for key in planted:
            spark._jsparkSession.sessionState().conf().unsetConf(key)
        for key in mounts:
            hadoop.unset(key)

    manifest = json.loads((out2 / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["curation"]["reused_from"] == "viewfs://***@outputs/out1"  # the reuse did happen
    assert manifest["config"]["reuse_items"] == "viewfs://***@outputs/out1"
    assert manifest["input"]["files"][0]["uri"].startswith("viewfs://***@inputs/raw/")
    assert {key: manifest["config"]["spark"][key] for key in SETTINGS} == dict.fromkeys(SETTINGS, "***")
    assert manifest["config"]["spark"]["spark.eventLog.dir"] == "s3a://***@logs/events"
    assert "manifest.json" in hub.pushed and "README.md" in hub.pushed and "evaluation" in " ".join(hub.pushed)
    assert hub.requests[0]["authorization"].startswith("Basic ")  # the mirror got its user:password, not the token
    api_calls = [request for request in hub.requests if request["path"].startswith(("/api/repos/", "/api/datasets/"))]
    assert api_calls and all(request.get("authorization") == f"Bearer {channels['hf_token']}"  # the Hub got the token
                             for request in api_calls), api_calls

    captured = capfd.readouterr()
    written = {str(path.relative_to(tmp_path)): _readable(path) for path in sorted(tmp_path.rglob("*"))
               if path.is_file()}
    assert any(name.startswith("out2/report/") for name in written) and "run2.log" in written
    sinks = {**written, **{f"pushed:{name}": _readable_bytes(name, data) for name, data in hub.pushed.items()},
             "stdout": captured.out, "stderr": captured.err,
             "requests": json.dumps([{k: v for k, v in r.items() if k != "authorization"} for r in hub.requests])}
    leaks = {secret: found for secret in [*(planted[key] for key in SETTINGS), *channels.values()]
             if (found := [name for name, text in sinks.items() if secret in text])}
    assert not leaks, leaks


def _readable(path: Path) -> str:
    return _readable_bytes(path.name, path.read_bytes())


def _readable_bytes(name: str, data: bytes) -> str:
    """A file's text as a reader would see it: Parquet decoded (its pages may be compressed), gzip opened."""
    if name.endswith(".parquet"):
        import io

        table = pq.read_table(io.BytesIO(data))
        return json.dumps(table.to_pylist(), default=str) + str(table.schema.metadata)
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")
