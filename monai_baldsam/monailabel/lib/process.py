"""Start and stop a real ``monailabel start_server`` for this app on 127.0.0.1 (tests, benchmarks, scripts).

:class:`ServerProcess` runs the ``monailabel`` command of the current Python environment in its own process group,
waits until ``GET /info/`` answers, and stops it by its PID (SIGTERM to the group, then SIGKILL), also when the
caller fails: use it as a context manager. :meth:`ServerProcess.kill` SIGKILLs the group at once (a crash). The
server's output goes to a log file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping

__all__ = ["free_port", "monailabel_command", "ServerProcess"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def monailabel_command() -> list[str]:
    """The ``monailabel`` command of this Python environment."""
    script = Path(sys.executable).parent / "monailabel"
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: install the monailabel extra into this environment "
                                "(SAM2_BUILD_CUDA=0 pip install \"monai_baldsam[monailabel]\")")
    return [str(script)]


class ServerProcess:
    """A MONAI Label server for ``app`` on ``studies``.

    Args:
        app: the app folder (``monai_baldsam.monailabel.app_dir()``).
        studies: the studies folder, or a DICOMweb URL (``http://127.0.0.1:8042/dicom-web``).
        log_file: where the server's stdout and stderr go.
        conf: ``--conf`` options.
        env: extra environment variables (e.g. ``OMP_NUM_THREADS``).
        port: default: a free port.
        startup_timeout: seconds to wait for ``ready_path``.
        ready_path: what must answer 200 before the server counts as up (default ``/info/``; with MONAI Label's
            authentication on, ``/auth/``, the one endpoint open without a token).
    """

    def __init__(self, app: str | os.PathLike[str], studies: str | os.PathLike[str], log_file: str | os.PathLike[str],
                 conf: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None, port: int | None = None,
                 startup_timeout: float = 300.0, ready_path: str = "/info/") -> None:
        self.app = Path(app)
        url = isinstance(studies, str) and studies.startswith(("http://", "https://"))
        self.studies: str | Path = studies if url else Path(studies)  # Path("http://h") would lose a slash
        self.log_file = Path(log_file)
        self.conf = dict(conf or {})
        self.env = dict(env or {})
        self.host = "127.0.0.1"
        self.port = int(port) if port is not None else free_port(self.host)
        self.startup_timeout = float(startup_timeout)
        self.ready_path = ready_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def command(self) -> list[str]:
        cmd = [*monailabel_command(), "start_server", "--app", str(self.app), "--studies", str(self.studies),
               "--host", self.host, "--port", str(self.port)]
        for key, value in self.conf.items():
            cmd += ["--conf", key, str(value)]
        return cmd

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def start(self) -> ServerProcess:
        env = {**os.environ, **self.env}
        # the monailabel script runs "${MONAILABEL_PYEXE:-python}": make it this environment's Python
        env.setdefault("MONAILABEL_PYEXE", sys.executable)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"monailabel exited with status {self.process.returncode} before answering; "
                                   f"its log ({self.log_file}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=5) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(f"monailabel did not answer {self.ready_path} within {self.startup_timeout:.0f} s; its log "
                           f"({self.log_file}):\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop the server (and the scoring / training processes it started) by its PID; returns its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)  # its own session: the group id is its PID
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

    def kill(self, timeout: float = 30.0) -> int | None:
        """SIGKILL the server's process group at once, as a crash would (fault tests); returns its exit status."""
        if self.process is None:
            return None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=timeout)
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
