"""Hugging Face Hub I/O: fetch the raw category files (resumable) and the source's dataset card, and push a curated
output folder.

Downloads use only the standard library so that fetching data never depends on
``huggingface_hub``'s version or its cache layout; pushing uses ``huggingface_hub``.
Neither path ever puts the token into a message, an exception or a progress line.

Credentials travel only where they belong: the token to the Hub (huggingface.co, or the
``HF_ENDPOINT`` the user configured) and only over https, or to a loopback test server named as
the endpoint, where it never leaves the machine. A download from any other address drops it.
"""

from __future__ import annotations

import base64
import errno
import ipaddress
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.client import HTTPException, IncompleteRead
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit, urlunsplit

from pricecurate.errors import UserError
from pricecurate.masking import redact_text
from pricecurate.output.layout import DATA_KEY, DATA_PREFIX, MANIFEST, read_manifest
from pricecurate.output.source import PAGE, RAW_FOLDER, REPO, SOURCE_CARD
from pricecurate.rules.categories import CATEGORIES
from pricecurate.spark.fs import LocalFiles

HUB_ENDPOINT = "https://huggingface.co"
DEFAULT_BASE_URL = f"{HUB_ENDPOINT}/datasets/{REPO}/resolve/main/{RAW_FOLDER}"

CHUNK_BYTES = 1 << 20
PROGRESS_INTERVAL_S = 2.0
RETRY_BACKOFF_S = 1.0  # multiplied by the attempt number; tests set it to 0
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
ADVICE = "check the network or pass --base-url to a mirror; rerun to resume"
MAX_MESSAGE_CHARS = 400


class HubError(UserError, RuntimeError):
    """A download or push failed; the message is one line, safe to show, and says what to do."""


class _Retryable(Exception):
    """A transient failure (cut-off transfer, reset, timeout, 5xx): resume and try again."""


# ---------------------------------------------------------------------------
# Message hygiene


def _redact(text: str, token: str | None) -> str:
    """One line of text with the token (if any) and URI credentials blanked out, whitespace collapsed."""
    line = redact_text(" ".join(str(text).split()))
    if token:
        line = line.replace(token, "***")
    if len(line) > MAX_MESSAGE_CHARS:
        line = line[: MAX_MESSAGE_CHARS - 3] + "..."
    return line


def public_url(url: str) -> str:
    """The URL without user:password and without a query string (which may carry signatures or tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# ---------------------------------------------------------------------------
# Where credentials may go


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"https": 443, "http": 80}.get(scheme, 0)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hub_endpoint() -> str:
    """The Hub this machine is configured for: HF_ENDPOINT, else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT).rstrip("/")


def _in_clear(url: str) -> bool:
    """Whether a credential sent to ``url`` could be read on the network: plain http beyond loopback."""
    scheme, host, _ = _origin(url)
    return scheme != "https" and not _loopback(host)


def token_refusal(url: str) -> str | None:
    """Why the Hub token must not go to ``url`` (None: it may)."""
    if _origin(url) not in {_origin(HUB_ENDPOINT), _origin(hub_endpoint())}:
        return f"{_origin(url)[1]} is not the Hub endpoint {hub_endpoint()} (set HF_ENDPOINT to use another Hub)"
    if _in_clear(url):
        return f"{public_url(url)} is plain http; the Hub token goes over https only"
    return None


# ---------------------------------------------------------------------------
# Download


def download_categories(
    categories: list[str],
    dest: str | Path,
    base_url: str = DEFAULT_BASE_URL,
    token: str | None = None,
    progress: Callable[[str], None] = print,
    timeout: float = 30.0,
    retries: int = 3,
) -> list[Path]:
    """Fetch ``meta_<category>.jsonl`` for each category into ``dest``; returns the final paths.

    Files already present under their final name are skipped; a leftover ``.part`` is resumed.
    """
    unknown = [name for name in categories if name not in CATEGORIES]
    if unknown:
        raise HubError(f"unknown categor{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}")
    base, authorization = _authorization(base_url.rstrip("/"), token, progress)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for category in categories:
        name = f"meta_{category}.jsonl"
        job = _Job(url=f"{base}/{name}", final=dest / name, token=token, progress=progress, timeout=timeout,
                   authorization=authorization)
        paths.append(_download_with_retries(job, retries))
    return paths


def source_card_url(base_url: str) -> str | None:
    """Where the source dataset's card is: README.md at the root of the repository whose ``raw/meta_categories``
    folder ``base_url`` names; None for a base URL laid out otherwise."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if not path.endswith(f"/{RAW_FOLDER}"):
        return None
    return urlunsplit(parts._replace(path=f"{path[: -len(RAW_FOLDER)]}README.md"))


def download_source_card(
    dest: str | Path,
    base_url: str = DEFAULT_BASE_URL,
    token: str | None = None,
    progress: Callable[[str], None] = print,
    timeout: float = 30.0,
    retries: int = 3,
) -> Path | None:
    """Save the source dataset's card beside the raw files as ``SOURCE_CARD`` (its terms go into the data card);
    None, said in one line, when it cannot be had: the raw files are what a run needs."""
    url = source_card_url(base_url.rstrip("/"))
    if url is None:
        progress(_redact(f"warning: {SOURCE_CARD} not saved: --base-url {public_url(base_url)} does not end in "
                         f"/{RAW_FOLDER}, so the dataset's README.md is not known; its terms are at {PAGE}", token))
        return None
    dest = Path(dest)
    try:
        # The files' download has said already whether the token goes to this server; the card is on it too.
        url, authorization = _authorization(url, token, lambda _: None)
        dest.mkdir(parents=True, exist_ok=True)
        return _download_with_retries(_Job(url=url, final=dest / SOURCE_CARD, token=token, progress=progress,
                                           timeout=timeout, authorization=authorization), retries)
    except HubError as exc:
        (dest / f"{SOURCE_CARD}.part").unlink(missing_ok=True)  # a card is small: the next try starts afresh
        progress(_redact(f"warning: {SOURCE_CARD} not saved ({exc}); the data card points at {PAGE} for the source's "
                         "terms", token))
        return None


def _authorization(base_url: str, token: str | None, progress: Callable[[str], None]) -> tuple[str, str | None]:
    """The base URL without user:password, and the Authorization header its requests carry (if any).

    A user:password in the URL becomes basic authentication (never shown); else the token, when the
    URL is the Hub's. Neither is ever sent in clear beyond this machine.
    """
    parts = urlsplit(base_url)
    if parts.username is not None or parts.password is not None:
        if _in_clear(base_url):
            raise HubError(f"--base-url {public_url(base_url)} carries a password over plain http; use https")
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return (urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)),
                "Basic " + base64.b64encode(pair.encode()).decode("ascii"))
    if not token:
        return base_url, None
    refusal = token_refusal(base_url)
    if refusal:
        progress(f"HF_TOKEN not sent: {refusal}")
        return base_url, None
    return base_url, f"Bearer {token}"


@dataclass
class _Job:
    """One file to fetch, plus what every attempt needs."""

    url: str
    final: Path
    token: str | None
    progress: Callable[[str], None]
    timeout: float
    authorization: str | None = None  # the header value: the token, or the URL's user:password

    @property
    def part(self) -> Path:
        return self.final.with_name(self.final.name + ".part")

    @property
    def name(self) -> str:
        return self.final.name

    def say(self, message: str) -> None:
        self.progress(_redact(message, self.token))

    def fail(self, reason: str) -> HubError:
        return HubError(_redact(f"cannot download {self.name} from {public_url(self.url)}: {reason}", self.token))


def _download_with_retries(job: _Job, retries: int) -> Path:
    if job.final.exists():
        job.say(f"{job.name}: already present, skipping")
        return job.final
    attempt = 0
    while True:
        try:
            _attempt_transfer(job)
            break
        except _Retryable as exc:
            attempt += 1
            if attempt > retries:
                raise job.fail(f"{exc} (gave up after {attempt} attempts); {ADVICE}") from None
            job.say(f"{job.name}: {exc}; retrying ({attempt}/{retries}) from byte {_size(job.part)}")
            time.sleep(RETRY_BACKOFF_S * attempt)
    os.replace(job.part, job.final)  # atomic: the final name only ever holds a complete file
    return job.final


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _attempt_transfer(job: _Job) -> None:
    """Bring ``job.part`` to the full size, resuming from whatever it already holds."""
    offset = _size(job.part)
    response = _open(job, offset)
    if response is None:  # 416: the .part already holds everything
        job.say(f"{job.name}: already complete ({offset} bytes)")
        return
    with response:
        start, total = _resume_point(response, offset)
        if start != offset:
            job.part.unlink(missing_ok=True)
            raise _Retryable(f"server resumed at byte {start} instead of {offset}; restarting")
        if offset and start == 0:
            job.say(f"{job.name}: server ignored the resume request; restarting from zero")
        elif offset:
            job.say(f"{job.name}: resuming at byte {offset}")
        meter = _Meter(job, done=start, total=total)
        _copy_body(response, job.part, append=start > 0, meter=meter)
    size = _size(job.part)
    if total is not None and size < total:
        raise _Retryable(f"transfer cut off at {size} of {total} bytes")
    if total is not None and size > total:
        job.part.unlink(missing_ok=True)
        raise _Retryable(f"got {size} bytes but the server announced {total}; restarting")
    meter.finish()


def _open(job: _Job, offset: int):
    """The HTTP response for the bytes from ``offset`` on, or None when the server says nothing is left."""
    request = urllib.request.Request(job.url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    if job.authorization:
        # Unredirected: the Hub redirects to a signed CDN URL that must not receive (or see) the token.
        request.add_unredirected_header("Authorization", job.authorization)
    try:
        return urllib.request.urlopen(request, timeout=job.timeout)
    except urllib.error.HTTPError as exc:
        try:
            return _handle_http_error(job, exc, offset)
        finally:
            if exc.fp is not None:
                exc.fp.close()  # release the error response's connection
    except urllib.error.URLError as exc:
        if _unreachable(exc.reason):
            host = urlsplit(job.url).hostname
            raise job.fail(f"cannot reach {host} ({exc.reason}); {ADVICE}") from None
        raise _Retryable(f"connection failed ({exc.reason})") from None
    except (OSError, HTTPException) as exc:  # timeouts and resets while reading the status line
        raise _Retryable(f"connection failed ({exc or type(exc).__name__})") from None


def _handle_http_error(job: _Job, exc: urllib.error.HTTPError, offset: int) -> None:
    if exc.code == 416 and offset:
        total = _content_range_total(exc.headers.get("Content-Range", ""))
        if total is None or total == offset:
            return None
        job.part.unlink(missing_ok=True)  # .part is longer than the file: it is not ours to trust
        raise _Retryable(f"partial file ({offset} bytes) does not fit the remote size ({total}); restarting")
    if exc.code in RETRY_STATUSES:
        raise _Retryable(f"HTTP {exc.code} {exc.reason}")
    hint = "check the token" if exc.code in (401, 403) else ADVICE
    raise job.fail(f"HTTP {exc.code} {exc.reason}; {hint}") from None


def _unreachable(reason: object) -> bool:
    """DNS failure, refused connection or no route: being offline, which retrying will not fix."""
    if isinstance(reason, (socket.gaierror, ConnectionRefusedError)):
        return True
    return isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*$", re.IGNORECASE)


def _content_range_total(header: str) -> int | None:
    match = _CONTENT_RANGE.match(header or "")
    return int(match.group(2)) if match and match.group(2) != "*" else None


def _resume_point(response, offset: int) -> tuple[int, int | None]:
    """(first byte this response carries, full file size if announced)."""
    if response.status == 206:
        header = response.headers.get("Content-Range", "")
        match = _CONTENT_RANGE.match(header)
        start = int(match.group(1)) if match and match.group(1) else offset
        return start, _content_range_total(header)
    length = response.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


def _copy_body(response, part: Path, append: bool, meter: "_Meter") -> None:
    """Stream the body into ``part``; bytes received before a failure stay on disk for the next resume."""
    with open(part, "ab" if append else "wb") as out:
        try:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                meter.add(len(chunk))
        except IncompleteRead as exc:
            out.write(exc.partial)
            raise _Retryable("transfer cut off") from None
        except (OSError, HTTPException) as exc:
            raise _Retryable(f"connection lost ({exc or type(exc).__name__})") from None
        finally:
            out.flush()
            os.fsync(out.fileno())


@dataclass
class _Meter:
    """Throttled progress lines: bytes done / total and throughput, at most every PROGRESS_INTERVAL_S."""

    job: _Job
    done: int
    total: int | None
    started: float = field(default_factory=time.monotonic)
    last_line: float = field(default_factory=time.monotonic)
    received: int = 0

    def add(self, count: int) -> None:
        self.done += count
        self.received += count
        now = time.monotonic()
        if now - self.last_line >= PROGRESS_INTERVAL_S:
            self.last_line = now
            self.job.say(f"{self.job.name}: {_mb(self.done)} / {self._total()} MB ({self._rate(now)} MB/s)")

    def finish(self) -> None:
        now = time.monotonic()
        self.job.say(
            f"{self.job.name}: done, {_mb(self.done)} MB in {now - self.started:.1f} s ({self._rate(now)} MB/s)"
        )

    def _total(self) -> str:
        return _mb(self.total) if self.total is not None else "?"

    def _rate(self, now: float) -> str:
        return f"{self.received / 1e6 / max(now - self.started, 1e-6):.1f}"


def _mb(count: int) -> str:
    return f"{count / 1e6:.1f}"


# ---------------------------------------------------------------------------
# Push

REQUIRED_OUTPUT_FILES = ("manifest.json", "README.md")
PUSH_ADVICE = "check the network, the repo id and that the token may write to it"
PUSH_IGNORE = ["*.crc", ".*", "*/.*"]  # Spark's checksum side files and any hidden file, at any depth


def push_dataset(
    output_dir: str | Path,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    progress: Callable[[str], None] = print,
    *,
    endpoint: str | None = None,
) -> str:
    """Upload a pricecurate output folder as a Hub dataset repo; returns the dataset's URL.

    ``endpoint`` overrides the Hub address (a private Hub, or a local stub in tests).
    """
    folder = Path(output_dir)
    _check_output_folder(folder)
    endpoint = (endpoint or hub_endpoint()).rstrip("/")
    if _in_clear(endpoint):
        raise HubError(f"refusing to send the Hub token to {public_url(endpoint)} over plain http; "
                       "use an https endpoint (HF_ENDPOINT)")
    token = _resolve_token(token)
    import huggingface_hub  # lazy: only pushing needs it, and it is slow to import

    api = huggingface_hub.HfApi(token=token, endpoint=endpoint)
    try:
        progress(_redact(f"creating dataset repo {repo_id} (private={private})", token))
        repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        progress(_redact(f"uploading {folder} to {repo_url}", token))
        api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="dataset",
            ignore_patterns=PUSH_IGNORE + _unpublished(folder),
            commit_message="Upload pricecurate dataset",
        )
    except Exception as exc:  # noqa: BLE001 - every Hub failure becomes one safe line
        # ``from None``: the original traceback could print the token from a request repr.
        reason = f"{type(exc).__name__}: {exc}"
        raise HubError(_redact(f"push to {repo_id} failed: {reason}; {PUSH_ADVICE}", token)) from None
    progress(f"pushed {folder} to {repo_url}")
    return str(repo_url)


def _unpublished(folder: Path) -> list[str]:
    """Data folders the manifest does not name (a run writing beside the published dataset)."""
    published = (_manifest(folder) or {}).get(DATA_KEY)
    return [f"{entry.name}/*" for entry in folder.glob(f"{DATA_PREFIX}*") if entry.is_dir() and entry.name != published]


def _check_output_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise HubError(f"{folder} is not a directory; pass a pricecurate output folder")
    missing = [name for name in REQUIRED_OUTPUT_FILES if not (folder / name).is_file()]
    if missing:
        raise HubError(f"{folder} has no {' or '.join(missing)}; it must be a pricecurate output folder")
    if _manifest(folder) is None:
        raise HubError(f"{folder}/{MANIFEST} is cut short or not pricecurate's; run `pricecurate run` on it again")


def _manifest(folder: Path) -> dict | None:
    return read_manifest(LocalFiles(), str(folder / MANIFEST))


def _resolve_token(token: str | None) -> str:
    """The token from the argument, else HF_TOKEN, else the one `huggingface-cli login` saved."""
    if token:
        return token
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"]
    import huggingface_hub

    saved = huggingface_hub.get_token()
    if not saved:
        raise HubError("no Hugging Face token: run `huggingface-cli login` or set HF_TOKEN")
    return saved
