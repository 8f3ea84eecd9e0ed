"""Settings refuse bad values with one line naming the setting (issue 7), the
README's table is the declared list, and `taskjournal dev` keeps its secrets
private (issue 6 item 10)."""

import json
import os
import socket
import stat
from pathlib import Path

import pytest

from taskjournal.services import cli
from taskjournal.shared.config import SETTINGS, Settings, SettingError, private_dir, private_file, settings_table
from taskjournal.shared.preflight import check_port_free, check_reachable
from taskjournal.shared.version import build_commit, version_info

ROOT = {"TASKJOURNAL_ROOT_CLIENT_ID": "root", "TASKJOURNAL_ROOT_ACCESS_TOKEN": "secret"}
README = Path(__file__).resolve().parents[2] / "README.md"

BAD_VALUES = [
    ("PORT", "abc"), ("PORT", "99999"), ("PORT", "0"), ("PORT", "-1"), ("PORT", "80.5"),
    ("EXECUTOR_THREADS", "0"), ("EXECUTOR_THREADS", "many"),
    ("RESOLVER_INTERVAL", "0"), ("RESOLVER_INTERVAL", "-1"), ("RESOLVER_INTERVAL", "0.001"),
    ("RESOLVER_INTERVAL", "nan"), ("RESOLVER_INTERVAL", "inf"),
    ("CLAIM_TIMEOUT", "0"), ("CLAIM_TIMEOUT", "-5"), ("CLAIM_TIMEOUT", "1e9"), ("CLAIM_TIMEOUT", "20m"),
    ("CLAIMWORK_WAIT", "-1"), ("CLAIMWORK_WAIT", "3600"),
    ("DATABASE_URL", "mysql://user:pw@127.0.0.1/db"), ("DATABASE_URL", "127.0.0.1:5432/db"),
    ("DATABASE_URL", "postgresql://127.0.0.1:notaport/db"),
    ("AMQP_URL", "http://127.0.0.1:5672/"), ("AMQP_URL", "guest:guest@127.0.0.1:5672"), ("AMQP_URL", "amqp://"),
    ("ROOT_URL", "tc.example.com"), ("ROOT_URL", "ftp://tc.example.com"),
    ("LOG_FORMAT", "xml"), ("LOG_FORMAT", "JSON"),
    ("ANONYMOUS_SCOPES", "queue:get-task:* \u00e9t\u00e9"),
]


@pytest.mark.parametrize("name,value", BAD_VALUES)
def test_a_bad_value_is_refused_with_one_line_naming_the_setting(name, value):
    with pytest.raises(SettingError) as caught:
        Settings.from_env({**ROOT, "TASKJOURNAL_" + name: value})
    message = str(caught.value)
    assert message.startswith(f"TASKJOURNAL_{name}: ") and "\n" not in message
    assert caught.value.setting == "TASKJOURNAL_" + name


def test_a_refused_url_does_not_show_its_password():
    with pytest.raises(SettingError) as caught:
        Settings.from_env({"TASKJOURNAL_DATABASE_URL": "mysql://user:hunter2@db/x"})
    assert "hunter2" not in str(caught.value) and "mysql://user:***@db/x" in str(caught.value)


@pytest.mark.parametrize("given,missing", [("ROOT_CLIENT_ID", "ROOT_ACCESS_TOKEN"),
                                           ("ROOT_ACCESS_TOKEN", "ROOT_CLIENT_ID")])
def test_half_a_root_client_is_refused(given, missing):
    with pytest.raises(SettingError) as caught:
        Settings.from_env({"TASKJOURNAL_" + given: "x"})
    assert str(caught.value).startswith(f"TASKJOURNAL_{missing}: ") and "TASKJOURNAL_" + given in str(caught.value)


def _clients_file(tmp_path, content) -> dict:
    path = tmp_path / "clients.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return {**ROOT, "TASKJOURNAL_CLIENTS_FILE": str(path)}


@pytest.mark.parametrize("content", [
    "{not json",
    "",
    [],
    {"client": [{"clientId": "a", "accessToken": "b"}]},  # typo of "clients"
    {"clients": [{"clientId": "a"}]},
    {"clients": [{"clientId": "a", "accessToken": "b", "scope": ["*"]}]},  # typo of "scopes"
    {"clients": [{"clientId": "a", "accessToken": "b", "scopes": "queue:*"}]},
    {"clients": [{"clientId": "", "accessToken": "b"}]},
    {"clients": [{"clientId": "a", "accessToken": "b", "expires": "next tuesday"}]},
    {"roles": [{"roleId": "anonymous", "scopes": ["queue:\u00e9"]}]},
    {"roles": [{"scopes": []}]},
], ids=["not-json", "empty", "array", "client-typo", "no-token", "scope-typo", "scopes-string", "empty-id",
        "bad-expires", "bad-scope", "no-role-id"])
def test_a_bad_clients_file_is_refused(tmp_path, content):
    with pytest.raises(SettingError) as caught:
        Settings.from_env(_clients_file(tmp_path, content))
    assert str(caught.value).startswith("TASKJOURNAL_CLIENTS_FILE: ") and "\n" not in str(caught.value)


def test_a_missing_or_unreadable_clients_file_is_refused(tmp_path):
    for path in (tmp_path / "absent.json", tmp_path):  # a directory cannot be read as a file either
        with pytest.raises(SettingError, match="^TASKJOURNAL_CLIENTS_FILE: cannot read"):
            Settings.from_env({**ROOT, "TASKJOURNAL_CLIENTS_FILE": str(path)})


def test_the_example_clients_file_is_accepted(tmp_path):
    example = Path(__file__).resolve().parents[2] / "deploy" / "clients.example.json"
    settings = Settings.from_env({**ROOT, "TASKJOURNAL_CLIENTS_FILE": str(example)})
    assert settings.clients_file == example


def test_good_values_and_defaults():
    settings = Settings.from_env({**ROOT, "TASKJOURNAL_PORT": "9000", "TASKJOURNAL_RESOLVER_INTERVAL": "0.05",
                                  "TASKJOURNAL_DATABASE_URL": "postgres:///taskjournal",
                                  "TASKJOURNAL_AMQP_URL": "amqps://u:p@mq/", "TASKJOURNAL_ANONYMOUS_SCOPES": "",
                                  "TASKJOURNAL_LOG_FORMAT": "text", "TASKJOURNAL_CLAIMWORK_WAIT": ""})
    assert (settings.port, settings.resolver_interval, settings.anonymous_scopes) == (9000, 0.05, ())
    assert settings.claimwork_wait == 20.0  # empty means unset
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({}).host == "0.0.0.0"


def test_dev_listens_on_loopback_unless_told_otherwise():
    assert Settings.from_env({}, dev=True).host == "127.0.0.1"
    assert Settings.from_env({"TASKJOURNAL_HOST": "0.0.0.0"}, dev=True).host == "0.0.0.0"


def test_every_settings_field_is_declared_once():
    names = [spec.env_name for spec in SETTINGS]
    assert len(names) == len(set(names))
    assert {spec.attr for spec in SETTINGS} == set(Settings.__dataclass_fields__)


def test_the_readme_table_is_the_declared_list():
    assert settings_table() in README.read_text(), "regenerate the README table from shared.config.settings_table()"


# ------------------------------------------------------------------ probes
def test_a_gateway_without_a_root_client_is_refused():
    with pytest.raises(SettingError, match="^TASKJOURNAL_ROOT_ACCESS_TOKEN: the api-gateway needs a root client"):
        check_reachable(Settings(), ("api-gateway",), port_must_be_free=False)
    check_reachable(Settings(), ("scheduler",), port_must_be_free=False)


def test_a_port_someone_listens_on_is_refused_even_with_reuse_port():
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as aiohttp's reuse_port=True does
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(SettingError, match=f"^TASKJOURNAL_PORT: 127.0.0.1:{port} is already in use"):
            check_port_free("127.0.0.1", port)
        check_reachable(Settings(host="127.0.0.1", port=port), ("scheduler",), port_must_be_free=False)
    check_port_free("127.0.0.1", port)


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers (a hung server, a black hole)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_silent_broker_or_database_is_given_up_on(silent_server):
    from taskjournal.shared.preflight import check_broker, check_database

    with pytest.raises(SettingError, match="^TASKJOURNAL_AMQP_URL: cannot use amqp://u:\\*\\*\\*@127.0.0.1:.*no answer"):
        check_broker(f"amqp://u:pw@127.0.0.1:{silent_server}/", timeout=0.5)
    with pytest.raises(SettingError, match="^TASKJOURNAL_DATABASE_URL: .*timeout"):
        check_database(f"postgresql://u:pw@127.0.0.1:{silent_server}/db", timeout=2)


def test_a_host_that_is_not_ours_is_refused():
    with pytest.raises(SettingError, match="^TASKJOURNAL_HOST: "):
        check_port_free("198.51.100.77", 8080)  # TEST-NET-2: documentation only, not ours


# ------------------------------------------------------------------ exposure of `taskjournal dev`
def test_generated_credentials_are_private_from_the_first_byte(tmp_path, monkeypatch):
    created = []
    real_open = os.open

    def watching_open(path, flags, mode=0o777, *args, **kwargs):
        created.append((Path(path).name, flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", watching_open)
    data_dir = tmp_path / "data"
    settings = cli.with_root_credentials(Settings(data_dir=data_dir))
    path = data_dir / "root-credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"clientId": "root", "accessToken": settings.root_access_token}
    [(_, flags, mode)] = created
    assert flags & os.O_CREAT and flags & os.O_EXCL and mode == 0o600
    assert sorted(p.name for p in data_dir.iterdir()) == ["root-credentials.json"]  # no temporary left
    assert cli.with_root_credentials(Settings(data_dir=data_dir)) == settings  # kept across restarts


def test_configured_credentials_are_not_written(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", root_client_id="me", root_access_token="mine")
    assert cli.with_root_credentials(settings) is settings
    assert not (tmp_path / "d").exists()


def test_the_banner_shows_a_generated_token_only(tmp_path, capsys):
    generated = cli.with_root_credentials(Settings(data_dir=tmp_path))
    cli.describe(generated, ("api-gateway",), announce=True)
    assert f"TASKCLUSTER_ACCESS_TOKEN={generated.root_access_token}" in capsys.readouterr().err
    configured = Settings(data_dir=tmp_path, root_client_id="me", root_access_token="from-the-environment")
    cli.describe(configured, ("api-gateway",), announce=True)
    printed = capsys.readouterr().err
    assert "from-the-environment" not in printed and "TASKCLUSTER_CLIENT_ID=me" in printed
    assert 'export TASKCLUSTER_ACCESS_TOKEN="$TASKJOURNAL_ROOT_ACCESS_TOKEN"' in printed  # still pasteable


def test_concurrent_starts_agree_on_one_generated_token(tmp_path, monkeypatch):
    import itertools
    import threading
    from concurrent.futures import ThreadPoolExecutor

    both_generated = threading.Barrier(2, timeout=10)  # both starts found no file and made a token
    counter = itertools.count()

    def token(_: int) -> str:
        both_generated.wait()
        return f"token-{next(counter)}"

    monkeypatch.setattr(cli.secrets, "token_urlsafe", token)
    with ThreadPoolExecutor(2) as pool:
        tokens = set(pool.map(lambda _: cli.with_root_credentials(Settings(data_dir=tmp_path)).root_access_token,
                              range(2)))
    assert len(tokens) == 1
    assert json.loads((tmp_path / "root-credentials.json").read_text())["accessToken"] in tokens
    assert [p.name for p in tmp_path.iterdir()] == ["root-credentials.json"]


def test_the_sqlite_store_is_private(tmp_path):
    from taskjournal.shared.journal import open_journal

    data_dir = tmp_path / "store"
    journal = open_journal(None, str(data_dir))
    try:
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        for path in data_dir.iterdir():  # the database and SQLite's -wal / -shm files
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    finally:
        journal.close()


def test_private_file_tightens_an_existing_file(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    path.chmod(0o644)
    private_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "x"


def test_a_data_dir_that_cannot_be_created_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SettingError, match="^TASKJOURNAL_DATA_DIR: cannot create"):
        cli.with_root_credentials(Settings(data_dir=tmp_path / "file" / "data"))
    with pytest.raises(SettingError, match="^TASKJOURNAL_DATA_DIR: cannot create"):
        private_dir(tmp_path / "file")


def test_private_dir_leaves_an_existing_directory_alone(tmp_path):
    tmp_path.chmod(0o755)
    private_dir(tmp_path)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


# ------------------------------------------------------------------ version
def test_version_reports_our_package_and_build(monkeypatch, capsys):
    import importlib.metadata

    import taskjournal.shared

    assert taskjournal.shared.__version__ == importlib.metadata.version("taskjournal")
    build_commit.cache_clear()
    monkeypatch.setenv("TASKJOURNAL_COMMIT", "abc1234")
    try:
        info = version_info()
        assert (info["version"], info["commit"]) == (taskjournal.shared.__version__, "abc1234")
        with pytest.raises(SystemExit) as exited:
            cli.main(["--version"])
        assert exited.value.code == 0
        assert f"taskjournal {taskjournal.shared.__version__} (commit abc1234" in capsys.readouterr().out
    finally:
        build_commit.cache_clear()


def test_version_falls_back_to_the_checkout(monkeypatch):
    import subprocess

    monkeypatch.delenv("TASKJOURNAL_COMMIT", raising=False)
    build_commit.cache_clear()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=README.parent, capture_output=True, text=True)
        assert build_commit() == (head.stdout.strip() if head.returncode == 0 else "unknown")
    finally:
        build_commit.cache_clear()
