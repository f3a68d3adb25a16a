"""Builders for the evidence tests: a service with an `[evidence]` section, texts that
go through the real `receive()`, and a local RFC 3161 authority (`openssl ts`)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.evidence.tables import evidence_records
from antirelou.inbound import Receipt, receive
from antirelou.service import Service
from antirelou.settings import Settings
from tests.helpers import make_settings, sms


def evidence_service(
    database_url: str, clock: VirtualClock, folder: Path, **evidence: Any
) -> Service:
    base = make_settings(database_url)
    options = {"key_path": str(folder / "keys" / "evidence.key"), **evidence}
    data = {**base.model_dump(), "evidence": options}
    settings = Settings.model_validate(data)
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    return service


def text_in(service: Service, sender: str, body: str) -> Receipt:
    """A text through the one entry point (which writes its evidence record)."""
    return receive(service, sms(sender=sender, body=body))


def quiet_hour(service: Service, clock: VirtualClock, count: int = 12) -> list[Receipt]:
    """Ordinary texts from different men, a minute apart."""
    receipts = []
    for n in range(count):
        clock.advance(timedelta(minutes=1))
        receipts.append(text_in(service, f"+336120000{n:02d}", f"Salut, c'est Marc ({n})"))
    return receipts


def sql(service: Service, *statements: str) -> None:
    with service.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


# --- a local RFC 3161 time-stamping authority ---------------------------------------------

_TSA_CONF = """
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ ca_ext ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ tsa_ext ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)


def make_authority(folder: Path) -> Path:
    """A CA and a TSA certificate made with openssl; returns the openssl.cnf path."""
    conf = folder / "openssl.cnf"
    conf.write_text(_TSA_CONF.format(dir=folder))
    (folder / "serial").write_text("01\n")
    _openssl(folder, "req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-days", "36500", "-subj", "/CN=Test TSA Root",
             "-config", str(conf), "-extensions", "ca_ext")  # fmt: skip
    _openssl(folder, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key",
             "-out", "tsa.csr", "-subj", "/CN=Test TSA", "-config", str(conf))  # fmt: skip
    _openssl(folder, "x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "tsa.crt", "-days", "36500",
             "-extfile", str(conf), "-extensions", "tsa_ext")  # fmt: skip
    return conf


class _Handler(BaseHTTPRequestHandler):
    folder: Path
    conf: Path
    lock = threading.Lock()

    def do_POST(self) -> None:
        query = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock, tempfile.TemporaryDirectory() as work:
            request, response = Path(work) / "q.tsq", Path(work) / "r.tsr"
            request.write_bytes(query)
            _openssl(self.folder, "ts", "-reply", "-config", str(self.conf), "-queryfile",
                     str(request), "-out", str(response))  # fmt: skip
            body = response.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def local_authority(folder: Path) -> Iterator[tuple[str, Path]]:
    """Serve `openssl ts -reply` on 127.0.0.1; yields (url, CA certificate path)."""
    conf = make_authority(folder)
    handler = type("Handler", (_Handler,), {"folder": folder, "conf": conf})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/tsr", folder / "ca.crt"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def open_incident(service: Service) -> int:
    """An operator opens an incident (its evidence record too, if no hook writes it)."""
    from antirelou.evidence import hooks as evidence_hooks
    from antirelou.operations import open_incident as operator_opens
    from tests.helpers import LINE

    incident_id = operator_opens(service, LINE, "tester", "raid en cours")
    with service.engine.begin() as conn:
        ref = f"incident:{incident_id}"
        found = conn.execute(select(evidence_records.c.seq).where(evidence_records.c.ref == ref))
        if found.first() is None:
            evidence_hooks.incidents(conn, [incident_id], [], service.clock.now())
    return incident_id


RAID = ("ferme ta gueule salope", "on va vider ta cagnotte", "SALOPE", "féministe de merde 😂")


def raid(service: Service, clock: VirtualClock, senders: int = 8) -> list[Receipt]:
    """Insults from a run of numbers, seconds apart (an incident is open)."""
    receipts = []
    for n in range(senders * 2):
        clock.advance(timedelta(seconds=3))
        body = RAID[n % len(RAID)]
        receipts.append(text_in(service, f"+336990000{n % senders:02d}", body))
    return receipts
