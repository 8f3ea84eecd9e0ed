"""Start-up probes: fail in a few seconds with one line naming the setting,
instead of a traceback, a retry loop, or two servers sharing a port.

`check_reachable(settings, roles)` is a plain blocking function: call it before
starting the roles (from a thread if an event loop is already running and
a few seconds' block matters)."""

import asyncio
import errno
import logging
import socket
import threading
from typing import Iterable

from taskjournal.shared.config import PREFIX, Settings, SettingError, roles_need, without_password

TIMEOUT = 3.0  # seconds per probe
BROKER_ROLES = {"relay", "dependency-resolver"}  # the roles that talk to RabbitMQ


def check_reachable(settings: Settings, roles: Iterable[str], *, port_must_be_free: bool = True) -> None:
    """SettingError unless the roles can start: their settings are complete, the
    HTTP port is free (skip with port_must_be_free=False where processes share it
    on purpose, as the gateways of `taskjournal stack --scale`), the database
    accepts us and the broker answers."""
    roles = set(roles)
    roles_need(settings, roles)
    if port_must_be_free:
        check_port_free(settings.host, settings.port)
    probes = []
    if settings.database_url:
        probes.append((check_database, settings.database_url))
    if settings.amqp_url and roles & BROKER_ROLES:
        probes.append((check_broker, settings.amqp_url))
    _side_by_side(probes)


def _side_by_side(probes: list) -> None:
    """Run the probes at once, so two silent servers cost one timeout, not two;
    raise the first failure in list order without waiting for the later probes
    (daemon threads: a process that gives up does not wait for them either)."""
    failures: dict[int, BaseException] = {}

    def run(index: int, probe, argument) -> None:
        try:
            probe(argument)
        except BaseException as err:  # handed to the caller's thread
            failures[index] = err

    threads = [threading.Thread(target=run, args=(index, *probe), daemon=True) for index, probe in enumerate(probes)]
    for thread in threads:
        thread.start()
    for index, thread in enumerate(threads):
        thread.join()
        if index in failures:
            raise failures[index]


def check_port_free(host: str, port: int) -> None:
    """Bind without SO_REUSEPORT: a port someone listens on (another taskjournal
    with SO_REUSEPORT included) is refused rather than shared."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise SettingError(PREFIX + "HOST", f"cannot resolve {host!r}: {err.strerror}") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is fine
            try:
                probe.bind(address)
            except OSError as err:
                raise _bind_error(host, port, err) from None


def _bind_error(host: str, port: int, err: OSError) -> SettingError:
    where = f"{host}:{port}"
    if err.errno == errno.EADDRINUSE:
        return SettingError(PREFIX + "PORT", f"{where} is already in use (another taskjournal or server listens there)")
    if err.errno == errno.EADDRNOTAVAIL:
        return SettingError(PREFIX + "HOST", f"{host!r} is not an address of this machine")
    return SettingError(PREFIX + "PORT", f"cannot listen on {where}: {err.strerror}")


def check_database(url: str, timeout: float = TIMEOUT) -> None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=max(2, int(timeout)), autocommit=True):
            pass
    except psycopg.Error as err:
        raise SettingError(PREFIX + "DATABASE_URL",
                           f"cannot use {without_password(url)}: {_one_line(err, url)}") from None


def check_broker(url: str, timeout: float = TIMEOUT) -> None:
    failure = _in_own_loop(_connect_broker(url, timeout))
    if failure is not None:
        raise SettingError(PREFIX + "AMQP_URL", f"cannot use {without_password(url)}: {_one_line(failure, url)}")


async def _connect_broker(url: str, timeout: float) -> BaseException | None:
    import aio_pika

    quiet = logging.getLogger("aiormq")  # it logs the failure too: the one line is ours
    level, quiet.level = quiet.level, logging.CRITICAL
    try:
        connection = await asyncio.wait_for(aio_pika.connect(url, timeout=timeout), timeout + 0.5)
    except asyncio.TimeoutError:
        return TimeoutError(f"no answer within {timeout:g} s")
    except Exception as err:  # aio-pika raises many kinds: refused, auth, protocol, DNS
        if "Connection.Close" in str(err):  # RabbitMQ closes the handshake on an unknown vhost
            return ConnectionError("the broker closed the connection (unknown virtual host, or no access to it)")
        return err
    finally:
        quiet.setLevel(level)
    await connection.close()
    return None


def _in_own_loop(coroutine):
    """Run a coroutine to its end on a loop of its own, so callers inside or
    outside an event loop can use the probe."""
    result = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(coroutine)), daemon=True)
    thread.start()
    thread.join()
    return result[0] if result else RuntimeError("the probe failed")


def _one_line(err: BaseException, url: str) -> str:
    """The server's reason on one line, without the URL's password."""
    text = " ".join(str(err).split()) or type(err).__name__
    if not str(err).strip() or text.startswith("("):
        text = f"{type(err).__name__} {text}"
    password = _password(url)
    return text.replace(password, "***") if password else text


def _password(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    raw = urlsplit(url).password
    return unquote(raw) if raw else None
