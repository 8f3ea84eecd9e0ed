#!/usr/bin/env python3
"""Object bytes through the file back end, next to `cat` on the same disk.

Uploads (PUT to a putUrl) and downloads (GET of a getUrl) a SIZE-byte object
through a running taskjournal's artifact-service with curl, and copies the
same bytes with `cat` in the same directory: `cat`'s MB/s is the physical
limit of that disk and page cache. Both are warm-cache figures. Also reports the server's resident memory during
the transfers (it must stay flat: bodies are streamed, never held).

Standalone: `python bench/objects.py [--size-mb 100] [--dir DIR]` starts its
own `taskjournal dev` (SQLite, file back end) with its data under DIR."""

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import taskcluster

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000
CHUNK = 1 << 20


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class PeakRss:
    """The highest resident set size of a process while the block runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def __enter__(self):
        self.before = rss_kb(self.pid)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pid))
            self._stop.wait(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return max(0, self.peak - self.before) / 1024


def timed(command: str, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["sh", "-c", command], cwd=cwd, check=True)
    return time.perf_counter() - started


def curl_put(url: str, headers: dict, source: Path) -> float:
    args = ["curl", "-sf", "-o", "/dev/null", "-T", str(source), url]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    started = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - started


def curl_get(url: str) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sf", "-o", "/dev/null", url], check=True)
    return time.perf_counter() - started


async def put_once(service, source: Path, size: int) -> float:
    name = f"bench/{secrets.token_hex(6)}"
    upload_id = taskcluster.slugId()
    reply = service.createUpload(name, {
        "projectId": "bench", "uploadId": upload_id, "expires": taskcluster.stringDate(taskcluster.fromNow("1 hour")),
        "proposedUploadMethods": {"putUrl": {"contentType": "application/octet-stream", "contentLength": size}}})
    put = reply["uploadMethod"]["putUrl"]
    seconds = curl_put(put["url"], put["headers"], source)  # curl: the client is not what is measured
    service.finishUpload(name, {"projectId": "bench", "uploadId": upload_id})
    put_once.last_name = name
    return seconds


async def get_once(service, name: str) -> float:
    url = service.startDownload(name, {"acceptDownloadMethods": {"getUrl": True}})["url"]
    return curl_get(url)


def run(root_url: str, client_id: str, access_token: str, work_dir: Path, server_pid: int, size_mb: int = 100,
        repeats: int = 3) -> dict:
    """Median MB/s of `repeats` uploads and downloads, and of cat copy/read, in `work_dir`."""
    size = size_mb * MB
    service = taskcluster.Object({"rootUrl": root_url, "credentials": {"clientId": client_id,
                                                                       "accessToken": access_token}})
    source = work_dir / "bench-source.bin"
    with open(source, "wb") as file:
        for _ in range(size // CHUNK):
            file.write(os.urandom(CHUNK))
        file.write(os.urandom(size % CHUNK))
    cat_copy, cat_read, uploads, downloads = [], [], [], []
    with PeakRss(server_pid) as memory:
        for _ in range(repeats):
            cat_copy.append(timed(f"cat {source.name} > bench-copy.bin", work_dir))
            cat_read.append(timed(f"cat {source.name} > /dev/null", work_dir))
            uploads.append(asyncio.run(put_once(service, source, size)))
            downloads.append(asyncio.run(get_once(service, put_once.last_name)))
    for leftover in ("bench-source.bin", "bench-copy.bin"):
        (work_dir / leftover).unlink(missing_ok=True)

    def rate(seconds: list[float]) -> float:
        return round(size / MB / statistics.median(seconds), 1)

    result = {"size_mb": size_mb, "repeats": repeats,
              "upload_mb_s": rate(uploads), "cat_copy_mb_s": rate(cat_copy),
              "download_mb_s": rate(downloads), "cat_read_mb_s": rate(cat_read),
              "server_rss_growth_mb": round(memory.growth_mb, 1)}
    result["upload_vs_cat"] = round(result["upload_mb_s"] / result["cat_copy_mb_s"], 2)
    # the reference is the issue's: the same bytes copied by cat on the same disk. `cat > /dev/null` is
    # shown too; it writes nothing, so it is a page-cache read, not a transfer of the bytes anywhere.
    result["download_vs_cat"] = round(result["download_mb_s"] / result["cat_copy_mb_s"], 2)
    return result


def figures(result: dict) -> list[tuple[str, str]]:
    return [
        (f"upload {result['size_mb']} MB (curl PUT, file back end)",
         f"{result['upload_mb_s']} MB/s ({result['upload_vs_cat']:.0%} of cat copy {result['cat_copy_mb_s']} MB/s)"),
        (f"download {result['size_mb']} MB (curl GET, sendfile)",
         f"{result['download_mb_s']} MB/s ({result['download_vs_cat']:.0%} of cat copy {result['cat_copy_mb_s']} MB/s; "
         f"cat > /dev/null {result['cat_read_mb_s']} MB/s)"),
        ("server memory growth during transfers", f"{result['server_rss_growth_mb']} MB"),
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the server's data and the test files go (same disk)")
    parser.add_argument("--server", default=str(REPO / ".venv" / "bin" / "taskjournal"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="taskjournal-objects-", dir=args.dir) as work:
        work_dir = Path(work)
        with socket_port() as port:
            pass
        token, root_url = secrets.token_urlsafe(24), f"http://127.0.0.1:{port}"
        env = {**os.environ, "TASKJOURNAL_PORT": str(port), "TASKJOURNAL_DATA_DIR": str(work_dir / "data"),
               "TASKJOURNAL_ROOT_CLIENT_ID": "bench-root", "TASKJOURNAL_ROOT_ACCESS_TOKEN": token,
               "TASKJOURNAL_ROOT_URL": root_url, "TASKJOURNAL_LOG_FORMAT": "text"}
        env.pop("TASKJOURNAL_DATABASE_URL", None)
        server = subprocess.Popen([args.server, "dev"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_ready(server, root_url)
            result = run(root_url, "bench-root", token, work_dir, server.pid, args.size_mb, args.repeats)
        finally:
            server.terminate()
            server.wait(15)
    for label, value in figures(result):
        print(f"{label:45} {value}")
    return 0


class socket_port:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()


def _wait_ready(server: subprocess.Popen, root_url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("taskjournal exited")
        try:
            urllib.request.urlopen(root_url + "/api/object/v1/ping", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("taskjournal did not start")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
