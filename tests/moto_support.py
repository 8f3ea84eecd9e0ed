"""moto's standalone S3 server on a free loopback port, for the S3 back end's
tests (a real S3 API over HTTP, nothing mocked in-process)."""

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MotoServer:
    url: str
    process: subprocess.Popen

    def create_buckets(self, *names: str) -> None:
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        for name in names:
            s3.create_bucket(Bucket=name)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_moto() -> MotoServer:
    os.environ.update(CREDENTIALS)  # botocore reads them from the environment, as in production
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("moto_server exited")
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return MotoServer(url, process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto_server did not start")


def bucket_names() -> tuple[str, str]:
    suffix = secrets.token_hex(4)
    return f"tj-public-{suffix}", f"tj-private-{suffix}"
