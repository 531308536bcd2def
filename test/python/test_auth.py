"""Oxen's client against a Yoke server with auth on: it sends the token configured for the host
(`oxen.auth.config_auth`, as `oxen config --auth HOST TOKEN`), unchanged; scopes decide what it may do."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import oxen
import pytest
import requests

from conftest import REPO_ROOT, _SERVER_ENV, _free_port


@pytest.fixture(scope="module")
def secured(tmp_path_factory, oxen_user):
    """A second server, started with --auth, and tokens made with `yoke token create` on its data directory."""
    work = tmp_path_factory.mktemp("auth")
    data_dir = work / "data"

    def token(scope: str) -> str:
        made = subprocess.run(
            ["node", "bin/yoke.cjs", "token", "create", "--name", "Py", "--email", "py@example.com", "--scope", scope, "--data-dir", str(data_dir)],
            cwd=REPO_ROOT, env=_SERVER_ENV, capture_output=True, text=True, check=True,
        )
        return made.stdout.strip()

    admin, reader = token("admin"), token("read")
    port = _free_port()
    log = open(work / "server.log", "wb")
    process = subprocess.Popen(
        ["node", "bin/yoke.cjs", "serve", "--auth", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), "--log-level", "warn"],
        cwd=REPO_ROOT, env=_SERVER_ENV, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if requests.get(f"{url}/api/version", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    yield {"host": f"127.0.0.1:{port}", "url": url, "admin": admin, "reader": reader}
    process.terminate()
    process.wait(timeout=10)
    log.close()


def test_the_client_is_refused_without_a_token_and_works_with_one(secured, tmp_path):
    host, name = secured["host"], f"secure/repo-{uuid.uuid4().hex[:8]}"
    oxen.auth.config_auth(secured["admin"], host=host)
    remote = oxen.RemoteRepo(name, host=host, scheme="http")
    remote.create(empty=True)
    local = tmp_path / "local"
    (local / "dir").mkdir(parents=True)
    (local / "dir" / "a.txt").write_text("secret data\n")
    repo = oxen.Repo(str(local))
    repo.init()
    repo.add(str(local / "dir"))
    repo.commit("first")
    repo.set_remote("origin", f"http://{host}/{name}")
    repo.push("origin", "main")
    cloned = tmp_path / "clone"
    oxen.clone(name, str(cloned), host=host, scheme="http")
    assert (cloned / "dir" / "a.txt").read_text() == "secret data\n"

    # Plain HTTP sees the same: nothing without a token, the file with the read token.
    path = f"{secured['url']}/api/repos/{name}/file/main/dir/a.txt"
    assert requests.get(path).status_code == 401
    assert requests.get(path, headers={"Authorization": f"Bearer {secured['reader']}"}).content == b"secret data\n"

    # A read-only token reads but cannot push.
    oxen.auth.config_auth(secured["reader"], host=host)
    (local / "dir" / "b.txt").write_text("more\n")
    repo.add(str(local / "dir"))
    repo.commit("second")
    with pytest.raises(Exception, match="403|orbidden"):
        repo.push("origin", "main")
    assert oxen.RemoteRepo(name, host=host, scheme="http").ls("dir")

    # The client sends a token only to the host it was configured for: the same server named otherwise gets none.
    other_name = "localhost:" + host.split(":")[1]
    with pytest.raises(Exception, match="401|nauthorized"):
        oxen.RemoteRepo(name, host=other_name, scheme="http").ls("dir")
