"""Downloading a GGUF into the models folder, only when the user runs ``storyteller models pull``.

The bytes go to a hidden ``.NAME.part`` file beside the target, with a small ``.NAME.part.json``
saying where they came from. A dropped connection is retried with an HTTP ``Range`` request
(``If-Range`` guards against the file changing on the server); an interrupted run leaves the part
file, and the same command later continues from where it stopped. When the download is whole,
its sha256 is checked (against ``--sha256``, or the hash the server names: Hugging Face's
``X-Linked-Etag``, or an ``ETag`` that is a sha256), its GGUF header is read, and only then is it
renamed over the target: never over a link, a folder or anything that is not a regular file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import httpx

from storyteller.errors import StorytellerError

__all__ = ["PullError", "PullProgress", "PullResult", "PullSource", "parse_source", "pull"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HF_SHORT = re.compile(r"^(?:hf:)?([\w.-]+)/([\w.-]+)(?::(.+))?$")
_SPARE = 64 * 1024 * 1024  # keep this much free beyond the download
_CHUNK = 1024 * 1024
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class PullError(StorytellerError):
    """A download failed; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class PullSource:
    """Where a download comes from.

    Attributes:
        url: The URL fetched.
        filename: The file name in the models folder.
        sha256: A hash the user gave, if any.
        label: How messages name it.
    """

    url: str
    filename: str
    sha256: str | None = None
    label: str = ""


@dataclass(frozen=True, slots=True)
class PullProgress:
    """How far a download is: bytes on disk, the total if known, and where this run started."""

    done: int
    total: int | None
    started_at: int
    seconds: float


@dataclass(frozen=True, slots=True)
class PullResult:
    """A finished download.

    Attributes:
        path: The GGUF in the models folder.
        size: Its size in bytes.
        sha256: Its sha256.
        verified_by: Where the expected hash came from (``--sha256``, ``X-Linked-Etag``,
            ``ETag``), or ``None`` when the source gave none.
        resumed_from: Bytes that were already there from an earlier run.
    """

    path: Path
    size: int
    sha256: str
    verified_by: str | None
    resumed_from: int


def hf_endpoint() -> str:
    """The Hugging Face server (``HF_ENDPOINT``, as the ``huggingface_hub`` library reads it)."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def parse_source(text: str, *, sha256: str | None = None, name: str | None = None,
                 client: httpx.Client | None = None) -> PullSource:
    """Turn ``URL`` or ``ORG/NAME:FILE`` (or ``ORG/NAME:QUANT``, ``ORG/NAME``) into a source.

    A shorthand without a ``.gguf`` file name asks the Hugging Face API which GGUF files the
    repository has and picks the one that matches (the user asked for a download, so this
    request is theirs).

    Raises:
        PullError: Not a URL or shorthand, a scheme other than https (http only to this
            machine), or no single GGUF matches.
    """
    if sha256 is not None and not _HEX64.fullmatch(sha256.strip().lower()):
        raise PullError(f"--sha256 {sha256!r} is not a sha256 (64 hex digits).")
    expected = sha256.strip().lower() if sha256 else None
    text = text.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise PullError(f"{text}: only https:// URLs can be pulled.")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise PullError(f"{text}: plain http is allowed only to this machine; use the https:// URL.")
        filename = name or unquote(parts.path.rsplit("/", 1)[-1])
        return PullSource(text, _check_name(filename), expected, text)
    match = _HF_SHORT.match(text)
    if match is None:
        raise PullError(f"{text!r} is neither a URL nor ORG/NAME:FILE.gguf (a Hugging Face repository and file).")
    org, repo, pick = match.groups()
    if not pick or not pick.lower().endswith(".gguf"):
        pick = _pick_hf_file(org, repo, pick, client)
    url = f"{hf_endpoint()}/{org}/{repo}/resolve/main/{quote(pick)}"
    return PullSource(url, _check_name(name or pick.rsplit("/", 1)[-1]), expected, f"{org}/{repo}:{pick}")


def _check_name(filename: str) -> str:
    if not filename or filename.startswith(".") or any(c in filename for c in '/\\:\0') or \
            not filename.lower().endswith(".gguf"):
        raise PullError(f"{filename!r} is not a usable GGUF file name; pass --name NAME.gguf.")
    return filename


def _pick_hf_file(org: str, repo: str, pick: str | None, client: httpx.Client | None) -> str:
    url = f"{hf_endpoint()}/api/models/{org}/{repo}"
    own = client is None
    client = client or httpx.Client(timeout=30, follow_redirects=True, headers=_auth(url))
    try:
        response = client.get(url)
        if response.status_code != 200:
            raise PullError(f"{org}/{repo}: the Hugging Face API answered {response.status_code}; check the name "
                            "(set HF_TOKEN for a gated or private repository).")
        siblings = response.json().get("siblings") or []
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise PullError(f"{org}/{repo}: cannot list its files ({exc}).") from None
    finally:
        if own:
            client.close()
    files = [s.get("rfilename", "") for s in siblings if isinstance(s, dict)]
    ggufs = [f for f in files if f.lower().endswith(".gguf") and "mmproj" not in f.lower()]
    hits = [f for f in ggufs if pick is None or pick.lower() in f.lower()]
    if len(hits) == 1:
        return hits[0]
    shown = ", ".join(hits or ggufs) or "none"
    what = f"matching {pick!r}" if pick else ""
    raise PullError(f"{org}/{repo} has {len(hits)} GGUF files {what}; name one: {org}/{repo}:FILE.gguf "
                    f"(files: {shown}).".replace("  ", " "))


def _auth(url: str) -> dict[str, str]:
    token = os.environ.get("HF_TOKEN")
    if token and urlsplit(url).hostname == urlsplit(hf_endpoint()).hostname:
        return {"Authorization": f"Bearer {token}"}
    return {}


def _regular_or_absent(path: Path, what: str) -> bool:
    """Whether ``path`` exists (as a regular file); raises for anything else there."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(mode):
        raise PullError(f"{path} exists and is not a regular file (a link, folder or device); storyteller never "
                        f"replaces one. Move it away to {what}.")
    return True


def _server_sha(response: httpx.Response) -> tuple[str | None, str | None]:
    for r in [*response.history, response]:
        for header in ("x-linked-etag", "etag"):
            value = r.headers.get(header, "").strip().removeprefix("W/").strip('"').lower()
            if _HEX64.fullmatch(value):
                return value, "X-Linked-Etag" if header == "x-linked-etag" else "ETag"
    return None, None


def _total(response: httpx.Response, start: int) -> int | None:
    if response.status_code == 206:
        total = response.headers.get("content-range", "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else None


def pull(source: PullSource, models_dir: Path, *, force: bool = False, retries: int = 3,
         progress: Callable[[PullProgress], None] | None = None, client: httpx.Client | None = None) -> PullResult:
    """Download ``source`` into ``models_dir``, resuming an earlier partial download.

    Args:
        source: What to fetch.
        models_dir: Where the GGUF goes.
        force: Replace a file of the same name that is already there.
        retries: Times a dropped connection is picked up again within this run.
        progress: Called about every 64 KB written.
        client: An httpx client (tests pass one with their own timeouts).

    Raises:
        PullError: The server refused, the disk is too full, the hash does not match, the file is
            not a GGUF, or the connection kept dropping (the part file is kept for a later run).
    """
    from storyteller.fileio import fsync_dir

    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / source.filename
    if _regular_or_absent(target, "pull it") and not force:
        raise PullError(f"{target} is already there; pass --force to download it again.")
    part = models_dir / f".{source.filename}.part"
    meta_path = models_dir / f".{source.filename}.part.json"
    _regular_or_absent(part, "resume")
    meta = _load_meta(meta_path)
    if meta.get("url") != source.url and part.exists():
        part.unlink()  # a part from another URL is no use
        meta = {}
    own = client is None
    client = client or httpx.Client(timeout=httpx.Timeout(30.0, connect=15.0), follow_redirects=True,
                                    headers={"User-Agent": "storyteller", **_auth(source.url)})
    resumed_from = part.stat().st_size if part.exists() else 0
    expected, verified_by = (source.sha256, "--sha256") if source.sha256 else (meta.get("sha256"), meta.get("sha_from"))
    attempt = 0
    try:
        while True:
            have = part.stat().st_size if part.exists() else 0
            headers = {}
            if have:
                headers["Range"] = f"bytes={have}-"
                if meta.get("validator"):
                    headers["If-Range"] = meta["validator"]
            try:
                done = _fetch(client, source, part, have, headers, meta, meta_path, progress)
            except httpx.TransportError as exc:
                attempt += 1
                now = part.stat().st_size if part.exists() else 0
                if attempt > retries:
                    why = str(exc) or type(exc).__name__
                    raise PullError(f"{source.label}: the download was interrupted at {now:,} bytes ({why}); "
                                    "run the same command again to continue from there.") from None
                time.sleep(min(0.2 * 2 ** attempt, 5.0))
                continue
            if done:
                break
        if not source.sha256 and meta.get("sha256"):
            expected, verified_by = meta["sha256"], meta.get("sha_from")
        digest = _sha256(part)
        if expected and digest != expected:
            part.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
            raise PullError(f"{source.label}: sha256 mismatch (expected {expected}, got {digest}; from {verified_by}); "
                            "the download was deleted. Try again; if it happens again the source is damaged.")
        from storyteller.errors import ModelError
        from storyteller.models import read_gguf_info

        try:
            read_gguf_info(part)
        except ModelError as exc:
            part.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
            raise PullError(f"{source.label}: the download is not a usable GGUF ({str(exc).split(': ', 1)[-1]}) and "
                            "was deleted.") from None
        with open(part, "rb+") as fh:
            os.fsync(fh.fileno())
        _regular_or_absent(target, "pull it")  # checked again right before the rename
        os.replace(part, target)
        fsync_dir(models_dir)
        meta_path.unlink(missing_ok=True)
        return PullResult(target, target.stat().st_size, digest, verified_by if expected else None, resumed_from)
    finally:
        if own:
            client.close()


def _fetch(client: httpx.Client, source: PullSource, part: Path, have: int, headers: dict[str, str],
           meta: dict, meta_path: Path, progress: Callable[[PullProgress], None] | None) -> bool:
    """One request; True when the file is complete."""
    started = time.monotonic()
    with client.stream("GET", source.url, headers=headers) as response:
        if response.status_code == 416 and have:
            if meta.get("total") == have:
                return True  # it was complete: an earlier run stopped between the last byte and the rename
            part.unlink()  # the server has less than we do: start again
            return False
        if response.status_code not in (200, 206):
            hint = {401: " (set HF_TOKEN for a gated or private repository)",
                    403: " (access denied; a gated repository needs HF_TOKEN and accepted terms)",
                    404: " (check the name)"}.get(response.status_code, "")
            raise PullError(f"{source.label}: the server answered {response.status_code} "
                            f"{response.reason_phrase}{hint}.")
        if response.status_code == 200 and have:
            have = 0  # the server ignored the range, or the file changed: start again
        start = have
        if response.status_code == 206:
            first = response.headers.get("content-range", "").removeprefix("bytes ").partition("-")[0]
            if not first.isdigit() or int(first) != have:
                raise httpx.RemoteProtocolError("the server resumed at the wrong place")
        total = _total(response, have)
        sha, sha_from = _server_sha(response)
        validator = response.headers.get("etag", "")
        if not validator or validator.startswith("W/"):
            validator = response.headers.get("last-modified", "")
        meta.update({"url": source.url, "validator": validator, "total": total})
        if sha and not source.sha256:
            meta.update({"sha256": sha, "sha_from": sha_from})
        _save_meta(meta_path, meta)
        if total is not None:
            free = shutil.disk_usage(part.parent).free
            if total - have + _SPARE > free:
                raise PullError(f"{source.label}: not enough free space in {part.parent}: it needs "
                                f"{(total - have) / 1e9:.2f} GB more, and {free / 1e9:.2f} GB is free.")
        with open(part, "r+b" if have else "wb") as out:
            out.seek(have)
            out.truncate()
            first_bytes = not have
            written = have
            for chunk in response.iter_bytes(_CHUNK // 16):
                if first_bytes and len(chunk) >= 4:
                    if chunk[:4] != b"GGUF":
                        out.close()
                        part.unlink(missing_ok=True)
                        meta_path.unlink(missing_ok=True)
                        raise PullError(f"{source.label}: this is not a GGUF file (it starts with {chunk[:16]!r}); "
                                        "check the URL (a Hugging Face link should contain /resolve/, not /blob/).")
                    first_bytes = False
                out.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(PullProgress(written, total, start, time.monotonic() - started))
        if total is not None and written < total:
            raise httpx.RemoteProtocolError(f"the connection closed at {written:,} of {total:,} bytes")
        return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_meta(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_meta(path: Path, meta: dict) -> None:
    from storyteller.fileio import atomic_write

    atomic_write(path, json.dumps(meta).encode("utf-8"))
