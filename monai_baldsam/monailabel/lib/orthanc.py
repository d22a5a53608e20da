"""Start and stop a local Orthanc PACS with its DICOMweb plugin on 127.0.0.1 (tests, benchmarks, a first try).

:class:`OrthancProcess` writes its own configuration (its own storage folder, an HTTP port, the DICOMweb plugin at
``/dicom-web/``, no DICOM port, remote access refused, no authentication: for loopback use only), runs Debian's
``Orthanc`` (``apt-get install orthanc orthanc-dicomweb``) in its own process group, waits until ``GET /system``
answers and stops it by its PID. :meth:`OrthancProcess.upload` stores DICOM files through Orthanc's REST API
(``POST /instances``).

Orthanc 1.10 has no setting for the address it listens on: it listens on every interface, and
``"RemoteAccessAllowed": false`` makes it refuse every HTTP client that is not on the loopback interface.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable

from monai_baldsam.io.atomic import atomic_write_text
from monai_baldsam.monailabel.lib.process import free_port

__all__ = ["INSTALL_HINT", "find_orthanc", "find_dicomweb_plugin", "OrthancProcess"]

INSTALL_HINT = "install Orthanc and its DICOMweb plugin: apt-get install orthanc orthanc-dicomweb (Debian/Ubuntu)"
PLUGIN_NAME = "libOrthancDicomWeb.so"
PLUGIN_FOLDERS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc", "/usr/local/share/orthanc/plugins")


def find_orthanc() -> Path:
    """The ``Orthanc`` program (on the ``PATH`` or in ``/usr/sbin``)."""
    found = shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/local/sbin/Orthanc")
                                             if os.access(p, os.X_OK)), None)
    if not found:
        raise FileNotFoundError(f"Orthanc is not installed: {INSTALL_HINT}")
    return Path(found)


def find_dicomweb_plugin() -> Path:
    """The DICOMweb plugin's shared library: from ``dpkg -L orthanc-dicomweb``, else the usual plugin folders."""
    dpkg = shutil.which("dpkg")
    if dpkg:
        listed = subprocess.run([dpkg, "-L", "orthanc-dicomweb"], capture_output=True, text=True, check=False)
        for line in listed.stdout.splitlines():
            if Path(line).name.startswith(PLUGIN_NAME) and Path(line).is_file():
                return Path(line)
    for folder in PLUGIN_FOLDERS:
        if (Path(folder) / PLUGIN_NAME).is_file():
            return Path(folder) / PLUGIN_NAME
    raise FileNotFoundError(f"Orthanc's DICOMweb plugin ({PLUGIN_NAME}) was not found: {INSTALL_HINT}")


class OrthancProcess:
    """An Orthanc PACS storing into ``workdir`` (created; its ``storage/`` holds the database and files).

    Args:
        workdir: Orthanc's configuration, storage and log go here.
        port: HTTP port (default: a free one on 127.0.0.1).
        startup_timeout: seconds to wait for ``/system``.
    """

    def __init__(self, workdir: str | os.PathLike[str], port: int | None = None,
                 startup_timeout: float = 60.0) -> None:
        self.workdir = Path(workdir)
        self.host = "127.0.0.1"
        self.port = int(port) if port is not None else free_port(self.host)
        self.startup_timeout = float(startup_timeout)
        self.log_file = self.workdir / "orthanc.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The REST API's root."""
        return f"http://{self.host}:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        """The DICOMweb root, what ``monailabel start_server --studies`` takes."""
        return f"{self.url}/dicom-web"

    def config(self) -> dict[str, object]:
        storage = str((self.workdir / "storage").resolve())
        return {"Name": "monai_baldsam", "StorageDirectory": storage, "IndexDirectory": storage,
                "HttpPort": self.port, "DicomServerEnabled": False, "RemoteAccessAllowed": False,
                "AuthenticationEnabled": False, "HttpCompressionEnabled": False,
                "Plugins": [str(find_dicomweb_plugin())],
                "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Ssl": False,
                             "StudiesMetadata": "Full", "SeriesMetadata": "Full"}}

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def _get(self, path: str, timeout: float = 10.0) -> bytes:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout) as response:
            return response.read()

    def start(self) -> OrthancProcess:
        program = find_orthanc()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_file = atomic_write_text(self.workdir / "orthanc.json", json.dumps(self.config(), indent=2),
                                        overwrite=True)
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen([str(program), str(config_file)], stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, cwd=self.workdir)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with status {self.process.returncode} before answering; its log "
                                   f"({self.log_file}):\n{self.log_tail()}")
            try:
                plugins = json.loads(self._get("/plugins", timeout=5))
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.5)
                continue
            if "dicom-web" not in plugins:
                self.stop()
                raise RuntimeError(f"Orthanc started without its DICOMweb plugin (plugins: {plugins}); its log:\n"
                                   f"{self.log_tail()}")
            return self
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {self.startup_timeout:.0f} s; its log ({self.log_file}):\n"
                           f"{self.log_tail()}")

    def upload(self, files: Iterable[str | os.PathLike[str]]) -> list[dict[str, str]]:
        """Store DICOM files (``POST /instances``); returns Orthanc's answer per file (``ID``, ``ParentSeries``,
        ``Status``...). Raises ``RuntimeError`` naming a file Orthanc refused."""
        answers = []
        for path in files:
            request = urllib.request.Request(f"{self.url}/instances", data=Path(path).read_bytes(), method="POST",
                                             headers={"Content-Type": "application/dicom"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    answers.append(json.loads(response.read()))
            except urllib.error.HTTPError as err:
                raise RuntimeError(f"Orthanc refused {path}: HTTP {err.code} {err.read()[:300]!r}") from None
        return answers

    def get_json(self, path: str) -> object:
        """``GET <path>`` of the REST API, decoded."""
        return json.loads(self._get(path))

    def get_bytes(self, path: str) -> bytes:
        return self._get(path, timeout=60)

    def stop(self, timeout: float = 20.0) -> int | None:
        """Stop Orthanc by its PID (SIGTERM to its group, then SIGKILL); returns its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=timeout)
        return self.process.returncode

    def __enter__(self) -> OrthancProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
