"""A local HTTP server for download tests: Range requests, dropped connections, a Hugging Face look-alike.

Routes:
    ``/files/NAME``: the file, with ``ETag`` and ``Range`` / ``If-Range`` support.
    ``/ORG/REPO/resolve/main/NAME``: a 302 to ``/cdn/NAME`` carrying ``X-Linked-Etag`` (the
        sha256) and ``X-Linked-Size``, as huggingface.co answers for LFS files.
    ``/cdn/NAME``: the file again, with an ``ETag`` that is not a sha256 (as a CDN's is).
    ``/api/models/ORG/REPO``: ``{"siblings": [{"rfilename": ...}]}``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    data: bytes
    claimed_size: int | None = None  # a Content-Length that lies (free-space test)
    linked_sha: str | None = None  # X-Linked-Etag to announce (defaults to the real sha256)


@dataclass
class GGUFServer:
    files: dict[str, Served] = field(default_factory=dict)
    drops: list[int] = field(default_factory=list)  # per request: close after this many body bytes
    chunk_delay: float = 0.0  # seconds between 1 MB chunks (a slow link)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)

    def start(self) -> GGUFServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                owner.requests.append((self.path, self.headers.get("Range")))
                owner.authorization.append(self.headers.get("Authorization"))
                parts = self.path.strip("/").split("/")
                if parts[:2] == ["api", "models"] and len(parts) == 4:
                    names = [n for n in owner.files]
                    body = json.dumps({"id": "/".join(parts[2:]), "siblings": [{"rfilename": n} for n in names]
                                       + [{"rfilename": "README.md"}]}).encode()
                    return self._send(200, body, {"Content-Type": "application/json"})
                if len(parts) == 5 and parts[2:4] == ["resolve", "main"] and parts[4] in owner.files:
                    served = owner.files[parts[4]]
                    sha = served.linked_sha or hashlib.sha256(served.data).hexdigest()
                    return self._send(302, b"", {"Location": f"/cdn/{parts[4]}", "X-Linked-Etag": f'"{sha}"',
                                                 "X-Linked-Size": str(len(served.data)), "ETag": '"pointer"'})
                if len(parts) == 2 and parts[0] in ("files", "cdn") and parts[1] in owner.files:
                    return self._file(owner.files[parts[1]], cdn=parts[0] == "cdn")
                self._send(404, b"not found", {})

            def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _file(self, served: Served, cdn: bool) -> None:
                data = served.data
                etag = '"cdn-v1"' if cdn else '"' + hashlib.md5(data).hexdigest() + '"'
                start = 0
                wanted = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                if wanted and wanted.startswith("bytes=") and (if_range is None or if_range == etag):
                    start = int(wanted[6:].split("-")[0])
                if start >= len(data) and wanted:
                    return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                self.send_response(206 if start else 200)
                self.send_header("ETag", etag)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(served.claimed_size or len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                limit = owner.drops.pop(0) if owner.drops else None
                end = len(data) if limit is None else min(len(data), start + limit)
                view = memoryview(data)
                for offset in range(start, end, 1 << 20):
                    if owner.chunk_delay:
                        time.sleep(owner.chunk_delay)
                    try:
                        self.wfile.write(view[offset:min(end, offset + (1 << 20))])
                    except (BrokenPipeError, ConnectionResetError):
                        break
                if limit is not None:
                    self.wfile.flush()
                    self.close_connection = True  # the dropped connection

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
