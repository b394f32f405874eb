"""Hub download/push, fully offline: a local HTTP server on 127.0.0.1 stands in for the Hub."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pricecurate.output import hub
from pricecurate.output.hub import DEFAULT_BASE_URL, HubError, download_categories, push_dataset
from pricecurate.output.layout import FORMAT, FORMAT_KEY

TOKEN = "hf_SECRET123"


def _jsonl(category: str, count: int) -> bytes:
    rows = (
        json.dumps({"parent_asin": f"B{index:09d}", "title": f"{category} item {index}", "price": index % 97 + 0.99})
        for index in range(count)
    )
    return ("\n".join(rows) + "\n").encode()


FILES = {
    "meta_Automotive.jsonl": _jsonl("Automotive", 2500),  # ~200 KB
    "meta_Books.jsonl": _jsonl("Books", 300),
}


@dataclass
class ServerState:
    """What the fake Hub serves and what it saw; tests tweak the knobs."""

    files: dict[str, bytes]
    requests: list[dict[str, str]] = field(default_factory=list)
    cut_after: int | None = None  # first GET sends full Content-Length, then only this many bytes
    ignore_range: bool = False
    required_token: str | None = None
    post_error_body: bytes | None = None
    accept_pushes: bool = False  # answer the Hub API calls a push makes, keeping what is uploaded
    pushed: dict[str, bytes] = field(default_factory=dict)  # path in the repo -> content


class FakeHubHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    @property
    def state(self) -> ServerState:
        return self.server.state

    def do_GET(self) -> None:
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.state.requests.append({"path": self.path, **headers})
        if self.state.required_token and headers.get("authorization") != f"Bearer {self.state.required_token}":
            self._reply(401, b"unauthorized")
            return
        data = self.state.files.get(self.path.rsplit("/", 1)[-1])
        if data is None:
            self._reply(404, b"not found")
            return
        start = self._range_start(headers.get("range"))
        if start is not None and start >= len(data):
            self._reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
        elif start is not None:
            extra = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
            self._reply(206, data[start:], extra)
        else:
            self._reply(200, data)

    def do_POST(self) -> None:
        # Enough of the Hub API for push tests: every POST fails, echoing what the server saw,
        # unless the state accepts pushes: then repos are created and every file is committed inline.
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.state.requests.append({"path": self.path, **{key.lower(): value for key, value in self.headers.items()}})
        if not self.state.accept_pushes:
            self._reply(400, self.state.post_error_body or b"{}", {"Content-Type": "application/json"})
            return
        root = f"http://{self.headers['Host']}"
        if self.path == "/api/repos/create":
            request = json.loads(body)
            answer = {"url": f"{root}/datasets/{request['organization']}/{request['name']}"}
        elif self.path == "/api/validate-yaml":  # the README's metadata header
            answer = {"errors": [], "warnings": []}
        elif "/preupload/" in self.path:
            files = json.loads(body)["files"]
            answer = {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
        elif "/commit/" in self.path:
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    self.state.pushed[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            repo = self.path.removeprefix("/api/").split("/commit/")[0]  # datasets/OWNER/NAME
            answer = {"commitUrl": f"{root}/{repo}/commit/{'0' * 40}", "commitOid": "0" * 40}
        else:
            self._reply(404, b"{}", {"Content-Type": "application/json"})
            return
        self._reply(200, json.dumps(answer).encode(), {"Content-Type": "application/json"})

    def _range_start(self, header: str | None) -> int | None:
        if not header or self.state.ignore_range:
            return None
        return int(header.removeprefix("bytes=").split("-")[0])

    def _reply(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.state.cut_after is not None:
            body, self.state.cut_after = body[: self.state.cut_after], None
            self.close_connection = True
        self.wfile.write(body)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeHubHandler)
    httpd.daemon_threads = True
    httpd.state = ServerState(files=dict(FILES))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/raw", httpd.state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port():
    """A port that refuses connections: bound (so nobody else takes it) but never listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(hub, "RETRY_BACKOFF_S", 0.0)


def _quiet(lines: list[str]):
    return lines.append


# ---------------------------------------------------------------------------
# download


def test_plain_download_is_byte_identical(server, tmp_path):
    base_url, state = server
    paths = download_categories(["Automotive", "Books"], tmp_path, base_url=base_url, progress=_quiet([]))
    assert paths == [tmp_path / "meta_Automotive.jsonl", tmp_path / "meta_Books.jsonl"]
    for path in paths:
        assert path.read_bytes() == FILES[path.name]
    assert not list(tmp_path.glob("*.part"))
    assert all("range" not in request for request in state.requests)


def test_interrupted_transfer_resumes_with_range(server, tmp_path):
    base_url, state = server
    state.cut_after = 50_000
    lines: list[str] = []
    download_categories(["Automotive"], tmp_path, base_url=base_url, progress=lines.append, retries=2)
    assert (tmp_path / "meta_Automotive.jsonl").read_bytes() == FILES["meta_Automotive.jsonl"]
    assert len(state.requests) == 2
    assert "range" not in state.requests[0]
    assert state.requests[1]["range"] == "bytes=50000-"
    assert any("retrying" in line for line in lines)


def test_repeated_cut_offs_give_up_with_advice_and_keep_part(server, tmp_path, monkeypatch):
    base_url, state = server
    original_reply = FakeHubHandler._reply

    def always_cut(self, status, body, extra=None):
        self.state.cut_after = 1000
        original_reply(self, status, body, extra)

    monkeypatch.setattr(FakeHubHandler, "_reply", always_cut)
    with pytest.raises(HubError) as caught:
        download_categories(["Automotive"], tmp_path, base_url=base_url, progress=_quiet([]), retries=2)
    message = str(caught.value)
    assert "meta_Automotive.jsonl" in message and "rerun to resume" in message and "\n" not in message
    assert len(state.requests) == 3
    assert (tmp_path / "meta_Automotive.jsonl.part").stat().st_size == 3000  # kept for the next run
    assert not (tmp_path / "meta_Automotive.jsonl").exists()


def test_existing_part_is_resumed_not_restarted(server, tmp_path):
    base_url, state = server
    data = FILES["meta_Automotive.jsonl"]
    (tmp_path / "meta_Automotive.jsonl.part").write_bytes(data[:30_000])
    download_categories(["Automotive"], tmp_path, base_url=base_url, progress=_quiet([]))
    assert (tmp_path / "meta_Automotive.jsonl").read_bytes() == data
    assert [request["range"] for request in state.requests] == ["bytes=30000-"]


def test_complete_part_gets_416_and_is_finished(server, tmp_path):
    base_url, state = server
    data = FILES["meta_Books.jsonl"]
    (tmp_path / "meta_Books.jsonl.part").write_bytes(data)
    download_categories(["Books"], tmp_path, base_url=base_url, progress=_quiet([]))
    assert (tmp_path / "meta_Books.jsonl").read_bytes() == data
    assert len(state.requests) == 1


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    base_url, state = server
    state.ignore_range = True
    # Garbage prefix: appending the 200 body to it would corrupt the file, so a match proves a restart.
    (tmp_path / "meta_Books.jsonl.part").write_bytes(b"x" * 1000)
    download_categories(["Books"], tmp_path, base_url=base_url, progress=_quiet([]))
    assert (tmp_path / "meta_Books.jsonl").read_bytes() == FILES["meta_Books.jsonl"]
    assert state.requests[0]["range"] == "bytes=1000-"


def test_complete_file_is_skipped_without_a_request(server, tmp_path):
    base_url, state = server
    (tmp_path / "meta_Books.jsonl").write_bytes(b"already here\n")
    paths = download_categories(["Books"], tmp_path, base_url=base_url, progress=_quiet([]))
    assert paths == [tmp_path / "meta_Books.jsonl"]
    assert (tmp_path / "meta_Books.jsonl").read_bytes() == b"already here\n"
    assert state.requests == []


def test_missing_remote_file_names_the_file(server, tmp_path):
    base_url, state = server
    with pytest.raises(HubError, match="meta_Gift_Cards.jsonl"):
        download_categories(["Gift_Cards"], tmp_path, base_url=base_url, progress=_quiet([]))
    assert len(state.requests) == 1  # a 404 is not retried


def test_unknown_category_is_rejected_before_any_request(server, tmp_path):
    base_url, state = server
    with pytest.raises(HubError, match="Nope"):
        download_categories(["Books", "Nope"], tmp_path, base_url=base_url, progress=_quiet([]))
    assert state.requests == []


def test_unreachable_server_fails_fast_without_part(closed_port, tmp_path):
    started = time.monotonic()
    with pytest.raises(HubError) as caught:
        download_categories(
            ["Books"], tmp_path, base_url=f"http://127.0.0.1:{closed_port}/raw", progress=_quiet([]), timeout=5
        )
    assert time.monotonic() - started < 3
    message = str(caught.value)
    assert "meta_Books.jsonl" in message and "\n" not in message and "mirror" in message
    assert list(tmp_path.iterdir()) == []


def _as_hub_endpoint(monkeypatch, base_url: str) -> None:
    """Make the local server the configured Hub, so that it may receive the token."""
    monkeypatch.setenv("HF_ENDPOINT", base_url.removesuffix("/raw"))


def test_token_is_sent_as_bearer_and_never_shown(server, tmp_path, monkeypatch):
    base_url, state = server
    state.required_token = TOKEN
    _as_hub_endpoint(monkeypatch, base_url)
    monkeypatch.setattr(hub, "PROGRESS_INTERVAL_S", 0.0)  # emit every progress line there is
    lines: list[str] = []
    download_categories(["Automotive"], tmp_path, base_url=base_url, token=TOKEN, progress=lines.append)
    assert state.requests[0]["authorization"] == f"Bearer {TOKEN}"
    assert any("MB/s" in line for line in lines)
    assert lines and not any(TOKEN in line for line in lines)


def test_rejected_token_error_does_not_leak_it(server, tmp_path, monkeypatch):
    base_url, state = server
    state.required_token = "hf_OTHER"
    _as_hub_endpoint(monkeypatch, base_url)
    lines: list[str] = []
    with pytest.raises(HubError) as caught:
        download_categories(["Books"], tmp_path, base_url=base_url, token=TOKEN, progress=lines.append)
    assert "401" in str(caught.value) and "meta_Books.jsonl" in str(caught.value)
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert not any(TOKEN in line for line in lines)


def test_token_goes_to_no_server_but_the_hub(server, tmp_path, monkeypatch):
    """A mirror that is not the configured Hub gets no token: the download goes on without it, said once."""
    base_url, state = server
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    lines: list[str] = []
    download_categories(["Books", "Automotive"], tmp_path, base_url=base_url, token=TOKEN, progress=lines.append)
    assert (tmp_path / "meta_Books.jsonl").read_bytes() == FILES["meta_Books.jsonl"]
    assert len(state.requests) == 2 and not any("authorization" in request for request in state.requests)
    notes = [line for line in lines if "HF_TOKEN not sent" in line]
    assert len(notes) == 1 and "HF_ENDPOINT" in notes[0] and TOKEN not in "".join(lines)


@pytest.mark.parametrize("endpoint, url, allowed", [
    (None, DEFAULT_BASE_URL + "/meta_Books.jsonl", True),
    ("https://hub.example", "https://hub.example/raw/meta_Books.jsonl", True),
    ("https://hub.example", DEFAULT_BASE_URL, True),  # huggingface.co itself stays trusted
    (None, "https://mirror.example/raw", False),  # https, but not the Hub
    ("http://hub.example", "http://hub.example/raw", False),  # the configured Hub, but in clear
    (None, "http://huggingface.co/datasets/x", False),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/raw", True),  # a loopback stand-in never leaves the machine
])
def test_token_refusal_rule(monkeypatch, endpoint, url, allowed):
    if endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
    else:
        monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert (hub.token_refusal(url) is None) == allowed


def test_base_url_password_is_basic_auth_and_never_shown(server, tmp_path):
    base_url, state = server
    with_password = base_url.replace("http://", "http://mirror-user:pw-SECRET9@")
    lines: list[str] = []
    download_categories(["Books"], tmp_path, base_url=with_password, progress=lines.append)
    assert (tmp_path / "meta_Books.jsonl").read_bytes() == FILES["meta_Books.jsonl"]
    expected = "Basic " + base64.b64encode(b"mirror-user:pw-SECRET9").decode()
    assert state.requests[0]["authorization"] == expected and "SECRET9" not in state.requests[0]["path"]
    assert not any("SECRET9" in line for line in lines)


def test_base_url_password_over_plain_http_is_refused_before_any_request(tmp_path):
    with pytest.raises(HubError) as caught:
        download_categories(["Books"], tmp_path, base_url="http://u:pw-SECRET9@mirror.invalid/raw", progress=_quiet([]))
    assert "https" in str(caught.value) and "SECRET9" not in str(caught.value) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_public_url_drops_credentials_and_query():
    url = "https://user:pw@mirror.example:8443/raw/meta_Books.jsonl?token=abc"
    assert hub.public_url(url) == "https://mirror.example:8443/raw/meta_Books.jsonl"


# ---------------------------------------------------------------------------
# the source's card

SOURCE_README = b"---\nlicense: other\nlicense_name: example-terms\n---\n# A source dataset\n"


def test_download_saves_the_source_card_beside_the_files(server, tmp_path, capsys):
    """`pricecurate download` fetches README.md from the root of the repository whose raw folder it reads."""
    from pricecurate.cli.main import main
    from pricecurate.output.source import read_terms
    from pricecurate.spark.fs import LocalFiles

    base_url, state = server
    state.files["README.md"] = SOURCE_README
    root = "/datasets/someone/source/resolve/main"
    raw = f"{base_url.removesuffix('/raw')}{root}/raw/meta_categories"
    assert main(["download", "--categories", "Books", "--base-url", raw, str(tmp_path)]) == 0
    assert [r["path"] for r in state.requests] == [f"{root}/raw/meta_categories/meta_Books.jsonl", f"{root}/README.md"]
    assert (tmp_path / "SOURCE_CARD.md").read_bytes() == SOURCE_README
    assert "and the source's card as SOURCE_CARD.md" in capsys.readouterr().out
    # What a run reads from its input folder for the data card's terms.
    assert read_terms(LocalFiles(), str(tmp_path)) == {"license": "other", "license_name": "example-terms"}


def test_a_source_card_that_cannot_be_had_is_one_warning(server, tmp_path):
    base_url, state = server
    lines: list[str] = []
    assert hub.download_source_card(tmp_path, f"{base_url}/meta_categories", progress=lines.append) is None
    assert len(state.requests) == 1 and state.requests[0]["path"] == "/README.md"  # a 404, not retried
    [warning] = lines
    assert warning.startswith("warning: SOURCE_CARD.md not saved (") and "HTTP 404" in warning
    assert "huggingface.co/datasets/McAuley-Lab/Amazon-Reviews-2023" in warning and "\n" not in warning
    assert list(tmp_path.iterdir()) == []


def test_a_base_url_of_another_layout_names_no_card_and_asks_nothing(server, tmp_path):
    base_url, state = server
    lines: list[str] = []
    assert hub.download_source_card(tmp_path, base_url, progress=lines.append) is None
    assert state.requests == [] and len(lines) == 1 and "does not end in /raw/meta_categories" in lines[0]


def test_the_source_card_url_is_the_repository_root():
    assert hub.source_card_url(DEFAULT_BASE_URL) == (
        "https://huggingface.co/datasets/McAuley-Lab/Amazon-Reviews-2023/resolve/main/README.md")
    assert hub.source_card_url("https://mirror.example/raw/meta_categories/") == "https://mirror.example/README.md"
    assert hub.source_card_url("https://mirror.example/meta") is None


# ---------------------------------------------------------------------------
# push


@pytest.fixture
def output_dir(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({FORMAT_KEY: FORMAT}))
    (folder / "README.md").write_text("# card\n")
    return folder


@pytest.fixture
def no_saved_token(monkeypatch, tmp_path):
    """No token anywhere, and no real Hub settings leaking in from the environment.

    HF_HUB_OFFLINE is left unset: huggingface_hub 2.x reads it per request and would then
    refuse before any connection, hiding the network path these tests exercise.
    """
    import huggingface_hub

    for name in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)


def test_push_without_token_asks_for_one(output_dir, no_saved_token, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # belt and braces: nothing may go out
    with pytest.raises(HubError, match="token"):
        push_dataset(output_dir, "someone/prices", progress=_quiet([]))


def test_push_requires_a_pricecurate_output(tmp_path):
    (tmp_path / "README.md").write_text("# not ours\n")
    with pytest.raises(HubError, match="manifest.json.*pricecurate output"):
        push_dataset(tmp_path, "someone/prices", token=TOKEN, progress=_quiet([]))


def test_push_refuses_a_manifest_cut_short_before_any_connection(output_dir, no_saved_token):
    (output_dir / "manifest.json").write_text('{"pricecurate_format": 1, "accou')  # a kill mid-write, of old
    with pytest.raises(HubError, match="manifest.json is cut short or not pricecurate's"):
        push_dataset(output_dir, "someone/prices", token=TOKEN, progress=_quiet([]), endpoint="http://hub.invalid")


def test_push_to_unreachable_hub_fails_fast_without_token(output_dir, closed_port, no_saved_token):
    started = time.monotonic()
    with pytest.raises(HubError) as caught:
        push_dataset(
            output_dir, "someone/prices", token=TOKEN, progress=_quiet([]), endpoint=f"http://127.0.0.1:{closed_port}"
        )
    assert time.monotonic() - started < 5
    assert "someone/prices" in str(caught.value) and "\n" not in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_push_refuses_a_plain_http_hub_before_any_connection(output_dir, no_saved_token, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    started = time.monotonic()
    with pytest.raises(HubError) as caught:
        push_dataset(output_dir, "someone/prices", progress=_quiet([]), endpoint="http://hub.invalid")
    assert time.monotonic() - started < 1  # refused, not a failed connection (.invalid never resolves)
    assert "plain http" in str(caught.value) and "https" in str(caught.value) and TOKEN not in str(caught.value)


def test_push_uploads_the_folder_to_the_hub(output_dir, server, no_saved_token):
    """The whole protocol against the stand-in: what arrives is the folder, minus the checksum side files."""
    base_url, state = server
    state.accept_pushes = True
    (output_dir / ".manifest.json.crc").write_text("crc")
    url = push_dataset(output_dir, "someone/prices", token=TOKEN, progress=_quiet([]),
                       endpoint=base_url.removesuffix("/raw"))
    assert url.endswith("/datasets/someone/prices")
    assert state.pushed == {"manifest.json": (output_dir / "manifest.json").read_bytes(), "README.md": b"# card\n"}
    assert all(request["authorization"] == f"Bearer {TOKEN}" for request in state.requests)


def test_push_error_echoing_the_token_is_scrubbed(output_dir, server, no_saved_token):
    base_url, state = server
    state.post_error_body = json.dumps({"error": f"invalid credentials {TOKEN}"}).encode()
    with pytest.raises(HubError) as caught:
        endpoint = base_url.removesuffix("/raw")
        push_dataset(output_dir, "someone/prices", token=TOKEN, progress=_quiet([]), endpoint=endpoint)
    assert "***" in str(caught.value)  # the server's message got through, minus the token
    assert TOKEN not in str(caught.value)
