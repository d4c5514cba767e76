"""A minimal HTTP/1.1 keep-alive client on asyncio streams: one connection, one request at a time.

Why not aiohttp or httpx: per request they build request/response objects, header multidicts and
cookie jars; a load generator needs none of it. Writing a pre-encoded request and reading the
status line, headers and a Content-Length (or chunked) body costs a fraction of that, so one
process sustains a higher rate and the generator disturbs the measurement less.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class LoadTarget:
    """A pre-encoded request to one URL."""

    def __init__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"load test URL must be http://host[:port]/path, got {url!r}")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: keep-alive"]
        if body is not None:
            head += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        self.request = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


class Connection:
    """One keep-alive connection; reconnects after the server closes it."""

    def __init__(self, target: LoadTarget) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.target.host, self.target.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self) -> int:
        """Send the request, read the whole response, return its status code."""
        if self.writer is None:
            await self.connect()
        assert self.reader is not None and self.writer is not None
        self.writer.write(self.target.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = -1
        chunked = close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length >= 0:
            await self.reader.readexactly(length)
        else:
            await self.reader.read()
            close = True
        if close:
            self.close()
        return status
