"""A real agent in a subprocess on loopback, raw-socket HTTP, and the agent process's threads and file descriptors."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

TOKEN = "loopback-test-token-0123456789"


@dataclass
class Agent:
    process: subprocess.Popen
    url: str
    host: str
    port: int
    tmp: Path  # the agent's TMPDIR: where its upload folders go
    stderr: Path
    lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def upload_folders(self) -> list[str]:
        return sorted(p.name for p in self.tmp.glob("edgekit-agent-*"))

    def children(self) -> list[int]:
        found = []
        for task in os.listdir(f"/proc/{self.pid}/task"):
            text = Path(f"/proc/{self.pid}/task/{task}/children").read_text().split()
            found += [int(pid) for pid in text]
        return found

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def start_agent(home: Path, *extra: str, host: str = "127.0.0.1", lines: int = 1) -> Agent:
    """``edgekit agent`` on an ephemeral port with the test token; reads ``lines`` lines it prints at start."""
    home.mkdir(parents=True, exist_ok=True)
    token_file = home / "token.txt"
    token_file.write_text(TOKEN + "\n")
    tmp = home / "tmp"
    tmp.mkdir(exist_ok=True)
    stderr = home / "agent-stderr.txt"
    argv = [sys.executable, "-m", "edgekit.cli", "agent", "--host", host, "--port", "0", "--token-file", str(token_file), *extra]
    with open(stderr, "wb") as errors:  # a file, not a pipe: a full pipe would block the agent
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, text=True, env={**os.environ, "TMPDIR": str(tmp)})
    printed = [process.stdout.readline() for _ in range(lines)]
    assert "listening on http" in printed[0], stderr.read_text()
    url = printed[0].strip().rsplit(" ", 1)[1]
    port = int(url.rsplit(":", 1)[1])
    return Agent(process, url.replace("http://", "agent://"), host, port, tmp, stderr, printed)


def host_header(agent: Agent) -> str:
    return f"[{agent.host}]:{agent.port}" if ":" in agent.host else f"{agent.host}:{agent.port}"


def request_bytes(agent: Agent, method: str = "GET", path: str = "/info", headers: dict[str, str] | None = None,
                  body: bytes = b"", auth: bool = True) -> bytes:
    fields = {"Host": host_header(agent), "Connection": "close"}
    if auth:
        fields["Authorization"] = f"Bearer {TOKEN}"
    if body:
        fields["Content-Length"] = str(len(body))
    fields.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v is not None)
    return head.encode("latin-1") + b"\r\n" + body


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


def read_reply(sock: socket.socket, started: float, timeout: float = 15) -> Reply:
    """Read until the agent closes the connection; status 0 when it closed without answering."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    seconds = time.monotonic() - started
    if not data:
        return Reply(0, {}, b"", seconds)
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(status_line.split()[1]), headers, body, seconds)


def send_raw(agent: Agent, data: bytes, timeout: float = 15) -> Reply:
    started = time.monotonic()
    with socket.create_connection((agent.host, agent.port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_reply(sock, started, timeout)


def wait_until(check, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()
