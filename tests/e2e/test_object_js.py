"""The official JavaScript client's upload and download helpers against the
object service, on the file and S3 back ends (tests/e2e/js; `npm install`
runs once, into tests/e2e/js/node_modules)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_object_service import server  # noqa: F401  (the same servers: file and S3)

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="session")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("node is needed for the JS client's tests")
        pytest.skip("node is not installed")
    if not (JS / "node_modules" / "taskcluster-client").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=JS, check=True, timeout=300)
    return found


@pytest.mark.parametrize("size", [100, 300_000])  # dataInline, putUrl
def test_js_helpers_round_trip(node, server, size):  # noqa: F811
    name = f"e2e-js/{os.urandom(4).hex()}/{size}"
    done = subprocess.run([node, str(JS / "objects_roundtrip.js"), server.root_url, "e2e-root", server.token, name,
                           str(size)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"ok":true' in done.stdout and "application/x-js-e2e" in done.stdout
