"""Fixtures for driving Oxen's own Python client (oxenai) against a real Yoke server.

One Yoke server is started for the whole session (`node bin/yoke.cjs serve`, a free port, a fresh data
directory); every test gets repositories of its own with random names, so tests do not see each other.

Each result is checked twice: through the client, and through plain HTTP (`yoke_http`), so that a client that
misreads a reply, or a reply the client happens to accept, cannot hide a wrong result on the server.

Environment:
  YOKE_TEST_LOG_LEVEL  the server's pino level (default `warn`). With `info` every request is logged, and a
                       failing test's report lists the requests it made, with their status codes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_USER_NAME = "Yoke Tester"
TEST_USER_EMAIL = "tester@example.com"

# The client keeps its user and auth configuration under $HOME/.config/oxen (liboxen's oxen_config_dir:
# OXEN_CONFIG_DIR if set, else dirs::home_dir()/.config/oxen), and its cache under $XDG_CACHE_HOME or
# $HOME/.cache (OXEN_TMP_DIR overrides). Point all of it at a private directory before the client is used, so
# the suite neither reads nor writes the developer's own configuration. The server is started with the
# environment as it was.
_SERVER_ENV = dict(os.environ)
_CLIENT_HOME = Path(tempfile.mkdtemp(prefix="yoke-pytest-home-"))
os.environ["HOME"] = str(_CLIENT_HOME)
os.environ["OXEN_CONFIG_DIR"] = str(_CLIENT_HOME / ".config" / "oxen")
os.environ["XDG_CONFIG_HOME"] = str(_CLIENT_HOME / ".config")
os.environ["XDG_CACHE_HOME"] = str(_CLIENT_HOME / ".cache")
os.environ["OXEN_TMP_DIR"] = str(_CLIENT_HOME / ".cache" / "oxen")

import oxen  # noqa: E402  (after the environment above)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class YokeServer:
    host: str  # "127.0.0.1:PORT", as RemoteRepo takes it
    url: str  # "http://127.0.0.1:PORT"
    data_dir: Path
    log_path: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture(scope="session")
def yoke(request) -> YokeServer:
    """A Yoke server over a fresh data directory, stopped at the end; its data is removed, and its log too unless
    a test failed."""
    work = Path(tempfile.mkdtemp(prefix="yoke-pytest-server-"))
    data_dir = work / "data"
    log_path = work / "server.log"
    port = _free_port()
    level = os.environ.get("YOKE_TEST_LOG_LEVEL", "warn")
    command = [
        "node", "bin/yoke.cjs", "serve",
        "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(data_dir), "--log-level", level,
    ]
    log_file = open(log_path, "wb")
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=_SERVER_ENV, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    server = YokeServer(f"127.0.0.1:{port}", f"http://127.0.0.1:{port}", data_dir, log_path, process)

    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            log_file.close()
            pytest.exit(f"yoke exited with {process.returncode} before answering:\n{server.log_text()}", returncode=3)
        try:
            if requests.get(f"{server.url}/api/version", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            process.kill()
            log_file.close()
            pytest.exit(f"yoke did not answer GET /api/version within 60 s:\n{server.log_text()}", returncode=3)
        time.sleep(0.1)

    yield server

    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        # Seen now and then: the server's graceful close waits on a connection the client keeps open.
        sys.stderr.write("\nyoke did not exit within 5 s of SIGTERM; killed it\n")
        process.kill()
        process.wait()
    log_file.close()
    if request.session.testsfailed:
        # Each failing test's report has the part of the log written during it; this is the end of the whole.
        lines = server.log_text().splitlines()
        shown = lines[-60:] if level not in ("info", "debug", "trace") else []
        sys.stderr.write(f"\n----- yoke server log ({level}), last {len(shown)} of {len(lines)} lines; kept in {log_path} -----\n")
        sys.stderr.write("".join(line[:1000] + "\n" for line in shown))
        sys.stderr.write("----- end of yoke server log -----\n")
        shutil.rmtree(data_dir, ignore_errors=True)  # the log stays
    else:
        shutil.rmtree(work, ignore_errors=True)


def pytest_unconfigure(config):
    shutil.rmtree(_CLIENT_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def oxen_user(yoke) -> dict:
    """The client refuses to create repositories or commit without a configured user."""
    oxen.user.config_user(TEST_USER_NAME, TEST_USER_EMAIL)
    return {"name": TEST_USER_NAME, "email": TEST_USER_EMAIL}


# --- plain HTTP ------------------------------------------------------------------------------------------------


class YokeHttp:
    """Reads the server's state over plain HTTP, independently of the client under test."""

    def __init__(self, server: YokeServer):
        self.url = server.url
        self.session = requests.Session()

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.url + path, timeout=60, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=60, **kwargs)

    def json(self, path: str, expect: int = 200, **kwargs) -> Any:
        res = self.get(path, **kwargs)
        assert res.status_code == expect, f"GET {path} -> {res.status_code}: {res.text[:500]}"
        return res.json()

    @staticmethod
    def repo_path(repo_id: str) -> str:
        return f"/api/repos/{repo_id}"

    def file(self, repo_id: str, revision: str, path: str) -> bytes:
        """GET /api/repos/{ns}/{repo}/file/{rev}/{path}; asserts 200."""
        url = f"/api/repos/{repo_id}/file/{quote(revision)}/{quote(path)}"
        res = self.get(url)
        assert res.status_code == 200, f"GET {url} -> {res.status_code}: {res.text[:500]}"
        return res.content

    def file_status(self, repo_id: str, revision: str, path: str) -> int:
        return self.get(f"/api/repos/{repo_id}/file/{quote(revision)}/{quote(path)}").status_code

    def history(self, repo_id: str, revision: str) -> list[dict]:
        """Every commit of GET …/commits/history/{revision}, newest first (all pages)."""
        commits: list[dict] = []
        page = 1
        while True:
            body = self.json(f"/api/repos/{repo_id}/commits/history/{quote(revision)}?page={page}&page_size=100")
            commits.extend(body["commits"])
            if page >= body.get("total_pages", 1) or not body["commits"]:
                return commits
            page += 1

    def branches(self, repo_id: str) -> dict[str, str]:
        """GET …/branches as {name: commit_id}."""
        body = self.json(f"/api/repos/{repo_id}/branches")
        return {b["name"]: b["commit_id"] for b in body["branches"]}

    def branch_head(self, repo_id: str, branch: str) -> str:
        return self.json(f"/api/repos/{repo_id}/branches/{quote(branch)}")["branch"]["commit_id"]

    def repo_status(self, repo_id: str) -> int:
        return self.get(f"/api/repos/{repo_id}").status_code

    def dir(self, repo_id: str, revision: str, path: str = "", **params) -> dict:
        return self.json(f"/api/repos/{repo_id}/dir/{quote(revision)}/{quote(path)}", params=params)

    def workspaces(self, repo_id: str) -> list[dict]:
        return self.json(f"/api/repos/{repo_id}/workspaces")["workspaces"]


@pytest.fixture(scope="session")
def yoke_http(yoke) -> YokeHttp:
    return YokeHttp(yoke)


# --- repositories ----------------------------------------------------------------------------------------------


@pytest.fixture
def repo_id() -> str:
    """A repository name no other test uses."""
    return f"pytest/repo-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_remote_repo(yoke, oxen_user):
    """Builds an unchanged client's RemoteRepo for this server; `create` says whether to create it."""

    def make(repo_id: str | None = None, create: bool = True, empty: bool = False) -> oxen.RemoteRepo:
        name = repo_id or f"pytest/repo-{uuid.uuid4().hex[:12]}"
        repo = oxen.RemoteRepo(name, host=yoke.host, scheme="http")
        if create:
            repo.create(empty=empty)
        return repo

    return make


@pytest.fixture
def remote_repo(make_remote_repo, repo_id) -> oxen.RemoteRepo:
    """A new repository with its initial commit (a README.md) on `main`."""
    return make_remote_repo(repo_id)


@pytest.fixture
def write_file(tmp_path):
    """Writes a local file under the test's temporary directory and returns its path."""

    def write(relative: str, content: bytes | str) -> Path:
        path = tmp_path / "local" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return write


# --- reporting -------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _server_log_offset(request):
    """Remembers where the server log stood when the test began (see pytest_runtest_makereport)."""
    server = request.getfixturevalue("yoke") if "yoke" in request.fixturenames else None
    if server is not None:
        request.node.stash[_LOG_OFFSET] = (server, server.log_path.stat().st_size)
    yield


_LOG_OFFSET = pytest.StashKey[tuple]()


def _requests_since(server: YokeServer, offset: int) -> str:
    """The server's log lines written since `offset`, requests condensed to `METHOD URL -> STATUS`."""
    with open(server.log_path, "rb") as f:
        f.seek(offset)
        raw = f.read().decode(errors="replace")
    incoming: dict[str, str] = {}
    lines: list[str] = []
    for line in raw.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            lines.append(line)
            continue
        req_id = entry.get("reqId")
        if entry.get("msg") == "incoming request" and req_id:
            incoming[req_id] = f"{entry['req']['method']} {entry['req']['url']}"
        elif entry.get("msg") == "request completed" and req_id:
            lines.append(f"{incoming.pop(req_id, '?')} -> {entry.get('res', {}).get('statusCode')}")
        else:
            err = entry.get("err")
            detail = f" ({err.get('message')})" if isinstance(err, dict) else ""
            lines.append(f"[{entry.get('level')}] {entry.get('msg')}{detail}")
    lines.extend(f"{req} -> (no answer logged)" for req in incoming.values())
    return "\n".join(lines)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed and _LOG_OFFSET in item.stash:
        server, offset = item.stash[_LOG_OFFSET]
        try:
            text = _requests_since(server, offset)
        except OSError:
            text = ""
        if text:
            report.sections.append(("yoke server log during this test", text))
    return report
