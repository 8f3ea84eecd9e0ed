"""Every package folder of shared/ and services/ is installed under the
`taskjournal` namespace (pyproject.toml lists them one by one)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_under_the_taskjournal_namespace():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"taskjournal." + ".".join(init.parent.relative_to(ROOT).parts)
               for top in ("shared", "services") for init in (ROOT / top).rglob("__init__.py")}
    assert set(config["packages"]) == folders
    assert config["package-dir"] == {"taskjournal.shared": "shared", "taskjournal.services": "services"}
