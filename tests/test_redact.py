"""Credentials in URIs and error texts are masked before anything is printed or written."""

from pricecurate.pipeline.read import InputFile
from pricecurate.spark.fs import redact, redact_text


def test_uri_credentials_are_masked():
    assert redact("s3a://AKIAKEY:s3cr3t@bucket/raw/meta") == "s3a://***@bucket/raw/meta"
    assert redact("hdfs://namenode:8020/raw") == "hdfs://namenode:8020/raw"
    assert redact("/local/path") == "/local/path"


def test_free_text_credentials_are_masked():
    text = "cannot read s3a://AKIAKEY:s3cr3t@bucket/x/meta_Books.jsonl.gz; also https://u:p@host/y"
    masked = redact_text(text)
    assert "s3cr3t" not in masked and "u:p@" not in masked
    assert "s3a://***@bucket/x/meta_Books.jsonl.gz" in masked


def test_manifest_entries_carry_no_credentials():
    entry = InputFile("s3a://AKIAKEY:s3cr3t@bucket/meta_Books.jsonl", "meta_Books.jsonl", "Books", 10).manifest_entry()
    assert "s3cr3t" not in str(entry) and entry["uri"] == "s3a://***@bucket/meta_Books.jsonl"
