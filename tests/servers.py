"""The real dashboard server (`streamlit run app.py`, pages and API on one port) on a free loopback
port, started and stopped the way scripts/run.sh and a process manager do: for the browser and API
tests and the API benchmark."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_dashboard(
    env: dict[str, str], out: Path, python: str = sys.executable
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server with `env`, its output into `out`; (process, base URL). Not yet serving: see `wait_healthy`."""
    port = free_port()
    command = [python, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
               "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip
    with out.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def is_healthy(url: str) -> bool:
    """Whether the server answers its own health check."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def wait_healthy(process: subprocess.Popen[bytes], url: str, seconds: float, out: Path) -> None:
    """Wait until the server is healthy; RuntimeError with the end of its output if it exits or takes longer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {_tail(out)}")
        if is_healthy(url):
            return
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer /_stcore/health within {seconds:g} s: {_tail(out)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(out: Path) -> str:
    return out.read_text(errors="replace")[-2000:] if out.exists() else ""
