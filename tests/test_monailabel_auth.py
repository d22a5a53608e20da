"""Who gets in: the server listens on loopback only as documented, and with MONAI Label's authentication on
(``MONAI_LABEL_AUTH_ENABLE=true``) a request without a valid token is refused.

MONAI Label 0.8.5 checks bearer tokens (JWT, RS256) against the public key its realm publishes
(``MONAI_LABEL_AUTH_REALM_URI``, a Keycloak realm in a team's deployment). Here a tiny realm on 127.0.0.1 publishes the
public key of a key pair made for the test, so the test can sign a valid token (accepted), and a forged one (signed with
another key) and an expired one (both refused). Both servers are stopped in finalizers.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import shutil
import threading
import time
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from monai_baldsam.monailabel.lib.process import ServerProcess
from monai_baldsam.monailabel.workdir import copy_app

pytestmark = pytest.mark.slow

MODEL_2D = "baldsam_ultrasound"
PICTURE = "benign_001"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "deploying.md"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def realm():
    """A Keycloak-like realm on 127.0.0.1 publishing ``{"public_key": <base64 DER>}``; stopped at the end."""
    key = _key()
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    body = json.dumps({"realm": "monailabel", "public_key": base64.b64encode(der).decode()}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200 if self.path.rstrip("/") == "/realms/monailabel" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"uri": f"http://127.0.0.1:{httpd.server_address[1]}/realms/monailabel", "key": key}
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dev_dir, realm: dict):
    root = tmp_path_factory.mktemp("auth")
    studies = root / "studies"
    studies.mkdir()
    shutil.copy(dev_dir("busi") / "images" / f"{PICTURE}.png", studies / f"{PICTURE}.png")
    proc = ServerProcess(copy_app(root / "app").path, studies, root / "server.log",
                         conf={"models": MODEL_2D, "device": "cpu"}, ready_path="/auth/",
                         env={"OMP_NUM_THREADS": "1", "MONAI_LABEL_AUTO_UPDATE_SCORING": "false",
                              "MONAI_LABEL_AUTH_ENABLE": "true", "MONAI_LABEL_AUTH_REALM_URI": realm["uri"]})
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()
        assert proc.process is None or proc.process.poll() is not None, "the server is still running after stop()"


def _token(key: rsa.RSAPrivateKey, expires_in: float = 300.0) -> str:
    now = int(time.time())
    claims = {"preferred_username": "annotator", "email": "a@example.org", "name": "An Annotator",
              "realm_access": {"roles": ["monailabel-user", "monailabel-annotator"]}, "iat": now,
              "exp": int(now + expires_in)}
    return jwt.encode(claims, key, algorithm="RS256")


def _listening_addresses(port: int) -> set[str]:
    """IPv4/IPv6 addresses with a socket listening on ``port`` (Linux ``/proc/net/tcp*``)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def test_server_listens_on_loopback_only(server: ServerProcess) -> None:
    addresses = _listening_addresses(server.port)
    assert addresses == {"0100007F"}, f"port {server.port} listens on {addresses} (0100007F is 127.0.0.1)"


def test_documented_start_commands_bind_to_loopback() -> None:
    assert DOCS.is_file(), f"{DOCS} is missing"
    blocks = re.findall(r"```bash\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    commands = [line for line in lines if "monailabel start_server" in line]
    assert commands, "docs/deploying.md shows no `monailabel start_server` command"
    for command in commands:
        assert "--host 127.0.0.1" in command, f"a documented start command does not bind to loopback:\n{command}"


@pytest.mark.parametrize("path", ["/info/", "/datastore/?output=all", f"/datastore/image?image={PICTURE}"])
def test_request_without_token_is_refused(server: ServerProcess, path: str) -> None:
    response = requests.get(f"{server.url}{path}", timeout=30)
    assert response.status_code == 401, f"{path} answered {response.status_code} without a token"


def test_infer_without_token_is_refused(server: ServerProcess) -> None:
    response = requests.post(f"{server.url}/infer/{MODEL_2D}", params={"image": PICTURE, "output": "json"},
                             data={"params": json.dumps({"foreground": [[200, 200, 0]]})}, timeout=30)
    assert response.status_code == 401


def test_forged_and_expired_tokens_are_refused_and_a_valid_one_accepted(server: ServerProcess, realm: dict) -> None:
    for token in (_token(_key()), _token(realm["key"], expires_in=-60)):
        response = requests.get(f"{server.url}/info/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert response.status_code == 401, f"a bad token got {response.status_code}"
    response = requests.get(f"{server.url}/info/", headers={"Authorization": f"Bearer {_token(realm['key'])}"},
                            timeout=30)
    assert response.status_code == 200, response.text[:300]
    assert MODEL_2D in response.json()["models"]
