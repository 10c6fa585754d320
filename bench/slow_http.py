"""A local HTTP server that answers after a delay: the network an agent waits on. Plain asyncio
streams, so that it takes as little of the machine's CPU as it can.

    python -m bench.slow_http PORT

``GET /wait?s=1`` answers ``ok`` after 1 s; ``GET /stats`` gives the wall-clock time of the first
``/wait`` request since the last ``GET /reset`` and how many were answered.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import parse_qs, urlsplit

STATE: dict[str, float] = {"first_at": 0.0, "answered": 0}


def response(body: bytes, content_type: str = "text/plain") -> bytes:
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        target = urlsplit(head.split(b" ", 2)[1].decode())
        if target.path == "/wait":
            if not STATE["first_at"]:
                STATE["first_at"] = time.time()
            await asyncio.sleep(float(parse_qs(target.query).get("s", ["1"])[0]))
            STATE["answered"] += 1
            writer.write(response(b"ok"))
        else:
            if target.path == "/reset":
                STATE.update(first_at=0.0, answered=0)
            writer.write(response(json.dumps(STATE).encode(), "application/json"))
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
