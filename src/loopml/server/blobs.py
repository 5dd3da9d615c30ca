"""Artifact content through the server: blobs up and down, large ones in resumable parts.

Blobs are content-addressed (``sha256``), so an upload is verified against the address it
claims before it is committed, and a download can be checked by the client. Routes:

=====================================================  ==========================================
``HEAD|GET /api/v1/blobs/{sha256}``                    exists / download (``Range: bytes=N-``
                                                       resumes)
``PUT /api/v1/blobs/{sha256}``                         upload in one request (up to a part)
``POST /api/v1/uploads``                               start a multi-part upload
``GET /api/v1/uploads/{upload_id}``                    how much has arrived (to resume)
``PUT /api/v1/uploads/{upload_id}?offset=N``           the next part, at offset N
``POST /api/v1/uploads/{upload_id}/commit?sha256=X``   verify the whole and commit it as blob X
``DELETE /api/v1/uploads/{upload_id}``                 abandon an upload
``GET /api/v1/runs/{run_id}/artifacts/content?path=``  a run's file, as a download or plain text
=====================================================  ==========================================

The parts of an upload live in the artifact store (``uploads/<id>/``), so any replica behind a
load balancer can take the next part or the commit. Blobs are readable by any signed-in caller:
an address is a 256-bit hash that only a permitted metadata read reveals. Every path-like
parameter goes through :func:`loopml.server.paths.confine`.
"""

from __future__ import annotations

import contextvars
import hashlib
import io
import posixpath
import re
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, TypeVar

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from loopml.errors import ArtifactNotFound, Conflict, InvalidArgument, NotFound, PayloadTooLarge
from loopml.server.api import principal_of
from loopml.server.paths import confine
from loopml.store.rest import codec
from loopml.store.rest.operations import API_PREFIX

if TYPE_CHECKING:
    from loopml.store.artifacts import FsspecArtifactStore

__all__ = ["build_blob_router", "read_limited"]

Sha = Annotated[str, Path(pattern="^[0-9a-f]{64}$", description="a blob's sha256")]
UploadId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="an upload's id")]

_T = TypeVar("_T")
CHUNK = 1 << 20
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
# Text shown inline in the browser is plain text, never markup; everything else downloads.
_TEXT_SUFFIXES = frozenset(
    (
        ".txt",
        ".log",
        ".json",
        ".yaml",
        ".yml",
        ".csv",
        ".tsv",
        ".md",
        ".py",
        ".toml",
        ".cfg",
        ".ini",
    )
)


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(int(declared), limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(_too_large(size, limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return (
        f"the request body is {size:,} bytes or more; this server accepts up to {limit:,} per "
        "request (LOOPML_SERVER_MAX_BODY_BYTES); send a large file in parts (POST "
        f"{API_PREFIX}/uploads), as the REST artifact store does"
    )


def _artifacts(request: Request) -> FsspecArtifactStore:
    artifacts: FsspecArtifactStore = request.app.state.artifacts
    return artifacts


def _json(value: Any, status: int = 200) -> Response:
    return Response(codec.dumps(value), status_code=status, media_type="application/json")


async def _in_thread(func: Callable[..., _T], *args: Any) -> _T:
    return await run_in_threadpool(contextvars.copy_context().run, func, *args)


class _Parts(io.RawIOBase):
    """The parts of an upload read back to back as one stream."""

    def __init__(self, fs: Any, paths: list[str]) -> None:
        self._fs = fs
        self._paths = iter(paths)
        self._current: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._current is None:
                path = next(self._paths, None)
                if path is None:
                    return 0
                self._current = self._fs.open(path, "rb")
            data = self._current.read(len(buffer))
            if data:
                buffer[: len(data)] = data
                return len(data)
            self._current.close()
            self._current = None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
        super().close()


class _Uploads:
    """Uploads in progress, as part files in the artifact store (``uploads/<id>/<offset>``)."""

    def __init__(self, artifacts: FsspecArtifactStore) -> None:
        self.artifacts = artifacts
        self.fs = artifacts.fs

    def folder(self, upload_id: str) -> str:
        return self.artifacts.staging(confine("upload_id", upload_id))

    def parts(self, upload_id: str) -> list[tuple[int, str, int]]:
        """``(offset, path, size)`` of each part, in order.

        Raises:
            NotFound: no such upload (never started, committed or abandoned).
        """
        folder = self.folder(upload_id)
        try:
            entries = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            entries = []
        marker = f"{folder}/started"
        if not entries and not self.fs.exists(marker):
            raise NotFound(
                f"upload {upload_id!r} does not exist (it was committed, abandoned or never "
                f"started); start one with POST {API_PREFIX}/uploads"
            )
        parts = []
        for entry in entries:
            name = posixpath.basename(str(entry["name"]).rstrip("/"))
            if name.isdigit():
                parts.append((int(name), str(entry["name"]), int(entry["size"])))
        return sorted(parts)

    def start(self) -> str:
        upload_id = uuid.uuid4().hex
        folder = self.folder(upload_id)
        self.fs.makedirs(folder, exist_ok=True)
        with self.fs.open(f"{folder}/started", "wb") as f:
            f.write(b"")
        return upload_id

    def offset(self, upload_id: str) -> int:
        parts = self.parts(upload_id)
        return parts[-1][0] + parts[-1][2] if parts else 0

    def append(self, upload_id: str, offset: int, data: bytes) -> int:
        current = self.offset(upload_id)
        if offset != current:
            raise Conflict(
                f"upload {upload_id!r} is at offset {current}, not {offset}; send the part "
                f"that starts at {current} (GET {API_PREFIX}/uploads/{upload_id} tells it)"
            )
        if data:
            path = f"{self.folder(upload_id)}/{offset:020d}"
            with self.fs.open(path + ".tmp", "wb") as f:
                f.write(data)
            self.fs.mv(path + ".tmp", path)
        return offset + len(data)

    def commit(self, upload_id: str, sha256: str) -> tuple[str, int]:
        sha256 = confine("sha256", sha256)
        parts = self.parts(upload_id)
        with _Parts(self.fs, [p for _, p, _ in parts]) as stream:
            stored, size = self.artifacts.put(io.BufferedReader(stream, CHUNK))
        if stored != sha256:
            self.abandon(upload_id)
            raise InvalidArgument(
                f"upload {upload_id!r} hashes to {stored}, not the {sha256} it claimed; it was "
                "dropped: upload the file again"
            )
        self.abandon(upload_id)
        return stored, size

    def abandon(self, upload_id: str) -> None:
        folder = self.folder(upload_id)
        if self.fs.exists(folder):
            self.fs.rm(folder, recursive=True)


def _stream(f: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    try:
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        f.close()


def _blob_response(
    artifacts: FsspecArtifactStore,
    sha256: str,
    range_header: str | None,
    headers: dict[str, str],
    media_type: str = "application/octet-stream",
    head: bool = False,
) -> Response:
    size = artifacts.blob_size(sha256)
    start, end, status = 0, size, 200
    if range_header:
        match = _RANGE.fullmatch(range_header.strip())
        if match is None or int(match.group(1)) > size:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        start = int(match.group(1))
        if match.group(2):
            end = min(size, int(match.group(2)) + 1)
        if end <= start and size:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{max(start, end - 1)}/{size}"
    headers.update(
        {"Accept-Ranges": "bytes", "ETag": f'"{sha256}"', "Content-Length": str(end - start)}
    )
    if head:
        return Response(status_code=status, headers=headers, media_type=media_type)
    f = artifacts.open_blob(sha256)
    return StreamingResponse(
        _stream(f, start, end), status_code=status, headers=headers, media_type=media_type
    )


def build_blob_router() -> APIRouter:
    """The blob, upload and artifact-content routes."""
    router = APIRouter(tags=["blobs"])

    def confined(*names: str, permission: str = "read") -> dict[str, Any]:
        return {"x-loopml-confined": list(names), "x-loopml-permission": permission}

    @router.head(API_PREFIX + "/blobs/{sha256}", openapi_extra=confined("sha256"))
    @router.get(API_PREFIX + "/blobs/{sha256}", openapi_extra=confined("sha256"))
    async def get_blob(request: Request, sha256: Sha) -> Response:
        """Download a blob (``Range: bytes=N-`` resumes); HEAD tells whether it exists."""
        principal_of(request)
        sha = confine("sha256", sha256)
        return await _in_thread(
            _blob_response,
            _artifacts(request),
            sha,
            request.headers.get("range"),
            {},
            "application/octet-stream",
            request.method == "HEAD",
        )

    @router.put(
        API_PREFIX + "/blobs/{sha256}", openapi_extra=confined("sha256", permission="write")
    )
    async def put_blob(request: Request, sha256: Sha) -> Response:
        """Upload a whole blob in one request; it must hash to ``sha256``."""
        principal_of(request)
        sha = confine("sha256", sha256)
        data = await read_limited(request, request.app.state.settings.max_body_bytes)
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            raise InvalidArgument(
                f"the body hashes to {actual}, not the {sha} in the URL; send the blob's "
                "exact content"
            )
        stored, size = await _in_thread(_artifacts(request).put, data)
        return _json({"sha256": stored, "size": size}, 201)

    @router.post(API_PREFIX + "/uploads", openapi_extra={"x-loopml-permission": "write"})
    async def start_upload(request: Request) -> Response:
        """Start a multi-part upload; send parts, then commit."""
        principal_of(request)
        upload_id = await _in_thread(_Uploads(_artifacts(request)).start)
        return _json({"upload_id": upload_id, "offset": 0}, 201)

    @router.get(API_PREFIX + "/uploads/{upload_id}", openapi_extra=confined("upload_id"))
    async def upload_status(request: Request, upload_id: UploadId) -> Response:
        """How many bytes of an upload have arrived: resume from there."""
        principal_of(request)
        upload_id = confine("upload_id", upload_id)
        offset = await _in_thread(_Uploads(_artifacts(request)).offset, upload_id)
        return _json({"upload_id": upload_id, "offset": offset})

    @router.put(
        API_PREFIX + "/uploads/{upload_id}",
        openapi_extra=confined("upload_id", permission="write"),
    )
    async def upload_part(
        request: Request,
        upload_id: UploadId,
        offset: Annotated[int, Query(ge=0, description="where this part starts")],
    ) -> Response:
        """Append the next part of an upload at ``offset`` (the bytes so far)."""
        principal_of(request)
        upload_id = confine("upload_id", upload_id)
        data = await read_limited(request, request.app.state.settings.max_body_bytes)
        end = await _in_thread(_Uploads(_artifacts(request)).append, upload_id, offset, data)
        return _json({"upload_id": upload_id, "offset": end})

    @router.post(
        API_PREFIX + "/uploads/{upload_id}/commit",
        openapi_extra=confined("upload_id", "sha256", permission="write"),
    )
    async def commit_upload(
        request: Request,
        upload_id: UploadId,
        sha256: Annotated[str, Query(pattern="^[0-9a-f]{64}$")],
    ) -> Response:
        """Verify the uploaded bytes hash to ``sha256`` and store them as that blob."""
        principal_of(request)
        upload_id = confine("upload_id", upload_id)
        stored, size = await _in_thread(
            _Uploads(_artifacts(request)).commit, upload_id, confine("sha256", sha256)
        )
        return _json({"sha256": stored, "size": size}, 201)

    @router.delete(
        API_PREFIX + "/uploads/{upload_id}",
        status_code=204,
        openapi_extra=confined("upload_id", permission="write"),
    )
    async def abandon_upload(request: Request, upload_id: UploadId) -> Response:
        """Drop an upload and the parts received."""
        principal_of(request)
        await _in_thread(_Uploads(_artifacts(request)).abandon, confine("upload_id", upload_id))
        return Response(status_code=204)

    @router.get(API_PREFIX + "/runs/{run_id}/artifacts/content", openapi_extra=confined("path"))
    async def artifact_content(
        request: Request,
        run_id: str,
        path: Annotated[str, Query(description="the file's path in the run")],
        inline: Annotated[bool, Query(description="show text in the browser")] = False,
    ) -> Response:
        """A run's file: a download, or (``inline=true``, text files) plain text."""
        principal = principal_of(request)
        path = confine("path", path)
        state = request.app.state

        def find() -> str:
            project_id = state.resolver.run(run_id)
            state.gate.check(principal, "read", [project_id])
            sha: str = state.store.get_artifact(run_id, path).sha256
            return sha

        sha = await _in_thread(find)
        name = posixpath.basename(path)
        text = inline and posixpath.splitext(name)[1].lower() in _TEXT_SUFFIXES
        safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "artifact"
        headers = {
            "Content-Disposition": "inline" if text else f'attachment; filename="{safe_name}"',
            "Content-Security-Policy": "sandbox; default-src 'none'",
        }
        try:
            return await _in_thread(
                _blob_response,
                _artifacts(request),
                sha,
                request.headers.get("range"),
                headers,
                "text/plain; charset=utf-8" if text else "application/octet-stream",
            )
        except ArtifactNotFound as exc:
            raise ArtifactNotFound(
                f"run {run_id!r} indexes {path!r} as blob {sha}, which is not in this server's "
                "artifact store"
            ) from exc

    return router
