"""Hub download/push, fully offline: a local HTTP server on 127.0.0.1 stands in for the Hub."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pricecurate import hub
from pricecurate.hub import HubError, download_categories, push_dataset

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
        # Enough of the Hub API for push tests: every POST fails, echoing what the server saw.
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(400, self.state.post_error_body or b"{}", {"Content-Type": "application/json"})

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


def test_token_is_sent_as_bearer_and_never_shown(server, tmp_path, monkeypatch):
    base_url, state = server
    state.required_token = TOKEN
    monkeypatch.setattr(hub, "PROGRESS_INTERVAL_S", 0.0)  # emit every progress line there is
    lines: list[str] = []
    download_categories(["Automotive"], tmp_path, base_url=base_url, token=TOKEN, progress=lines.append)
    assert state.requests[0]["authorization"] == f"Bearer {TOKEN}"
    assert any("MB/s" in line for line in lines)
    assert lines and not any(TOKEN in line for line in lines)


def test_rejected_token_error_does_not_leak_it(server, tmp_path):
    base_url, state = server
    state.required_token = "hf_OTHER"
    lines: list[str] = []
    with pytest.raises(HubError) as caught:
        download_categories(["Books"], tmp_path, base_url=base_url, token=TOKEN, progress=lines.append)
    assert "401" in str(caught.value) and "meta_Books.jsonl" in str(caught.value)
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert not any(TOKEN in line for line in lines)


def test_public_url_drops_credentials_and_query():
    url = "https://user:pw@mirror.example:8443/raw/meta_Books.jsonl?token=abc"
    assert hub.public_url(url) == "https://mirror.example:8443/raw/meta_Books.jsonl"


# ---------------------------------------------------------------------------
# push


@pytest.fixture
def output_dir(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
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


def test_push_to_unreachable_hub_fails_fast_without_token(output_dir, closed_port, no_saved_token):
    started = time.monotonic()
    with pytest.raises(HubError) as caught:
        push_dataset(
            output_dir, "someone/prices", token=TOKEN, progress=_quiet([]), endpoint=f"http://127.0.0.1:{closed_port}"
        )
    assert time.monotonic() - started < 5
    assert "someone/prices" in str(caught.value) and "\n" not in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_push_error_echoing_the_token_is_scrubbed(output_dir, server, no_saved_token):
    base_url, state = server
    state.post_error_body = json.dumps({"error": f"invalid credentials {TOKEN}"}).encode()
    with pytest.raises(HubError) as caught:
        endpoint = base_url.removesuffix("/raw")
        push_dataset(output_dir, "someone/prices", token=TOKEN, progress=_quiet([]), endpoint=endpoint)
    assert "***" in str(caught.value)  # the server's message got through, minus the token
    assert TOKEN not in str(caught.value)
