"""A master behind TLS (a loopback TLS front for detorm.local, certificates from a test CA):
the session verifies the master's certificate with the CA bundle it is given and refuses one it
cannot verify; sessions share one TLS context per trust source, and a context loaded for one
CA never vouches for a certificate of another."""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from detorm._api._drivers import _ssl_context
from detorm.errors import TransportError
from detorm.local import LocalMaster
from tests.sdk.apis import MODES, Api, Mode


@dataclass(frozen=True)
class TlsMaster:
    url: str
    ca_file: Path  # the CA that signed the master's certificate
    other_ca_file: Path  # a CA that did not


@contextmanager
def tls_front(context: ssl.SSLContext, port: int) -> Iterator[int]:
    """Terminate TLS on a loopback port and relay each connection to ``port``."""
    loop = asyncio.new_event_loop()
    started: asyncio.Future[asyncio.Server] = loop.create_future()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def accept(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        master_r, master_w = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(relay(client_r, master_w), relay(master_r, client_w),
                             return_exceptions=True)  # fmt: skip

    async def serve() -> None:
        server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=context)
        started.set_result(server)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    server = started.result()
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def tls_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsMaster]:
    home = tmp_path_factory.mktemp("tls")
    ca, other = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(home / "ca.pem"))
    other.cert_pem.write_to_path(str(home / "other.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with LocalMaster(process=False) as master:
        port = int(master.url.rsplit(":", 1)[1])
        with tls_front(context, port) as tls_port:
            yield TlsMaster(f"https://127.0.0.1:{tls_port}", home / "ca.pem", home / "other.pem")


def workspaces(mode: Mode, url: str, environ: dict[str, str], **options: object) -> list[str]:
    with Api(mode, url, environ, **options) as api:
        return [w.name for w in api(api.Workspace.query(api.session).all())]


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}


@pytest.mark.parametrize("mode", MODES)
def test_a_master_signed_by_the_given_ca_is_trusted(
    tls_master: TlsMaster, environ: dict[str, str], mode: Mode
) -> None:
    found = workspaces(mode, tls_master.url, environ, verify=str(tls_master.ca_file))
    assert found == ["Uncategorized"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("trusting", ["certifi", "another CA"])
def test_a_master_the_bundle_cannot_verify_is_refused(
    tls_master: TlsMaster, environ: dict[str, str], mode: Mode, trusting: str
) -> None:
    # The same process already trusts the right CA (a cached context): it must not leak.
    assert workspaces(mode, tls_master.url, environ, verify=str(tls_master.ca_file))
    verify = True if trusting == "certifi" else str(tls_master.other_ca_file)
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        workspaces(mode, tls_master.url, environ, verify=verify)
    assert not caught.value.request_sent


def test_sessions_share_a_context_per_trust_source(tls_master: TlsMaster) -> None:
    ca = str(tls_master.ca_file)
    assert _ssl_context(ca) is _ssl_context(ca)
    assert _ssl_context(True) is _ssl_context(True)
    assert _ssl_context(ca) is not _ssl_context(str(tls_master.other_ca_file))
    assert _ssl_context(False).verify_mode is ssl.CERT_NONE
    assert _ssl_context(True).verify_mode is ssl.CERT_REQUIRED


@pytest.mark.parametrize("mode", MODES)
def test_a_rewritten_bundle_is_read_again(
    tls_master: TlsMaster, environ: dict[str, str], mode: Mode, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(tls_master.ca_file.read_bytes())
    assert workspaces(mode, tls_master.url, environ, verify=str(bundle))
    bundle.write_bytes(tls_master.other_ca_file.read_bytes())  # the CA was replaced
    os.utime(bundle, ns=(0, bundle.stat().st_mtime_ns + 1_000_000))  # even within the tick
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        workspaces(mode, tls_master.url, environ, verify=str(bundle))


def test_ssl_cert_file_is_honoured_as_httpx_does(
    tls_master: TlsMaster, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_master.ca_file))
    assert workspaces("sync", tls_master.url, environ) == ["Uncategorized"]
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_master.other_ca_file))
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        workspaces("sync", tls_master.url, environ)
