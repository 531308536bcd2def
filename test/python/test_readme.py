"""The README's Python example runs as written (only the server's address is substituted)."""

import os
import re
import subprocess
import sys

import requests

from conftest import REPO_ROOT


def readme_python_example(marker: str = "PY") -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    found = re.search(rf"python3 - <<'{marker}'\n(.*?)\n{marker}\n", readme, re.S)
    assert found, f"README.md has no `python3 - <<'{marker}'` example"
    return found.group(1)


def run_with_own_client_config(script: str, cwd) -> subprocess.CompletedProcess:
    # Its own client configuration: the example configures a user, which must not become the suite's.
    home = cwd / "home"
    env = {**os.environ, "HOME": str(home), "OXEN_CONFIG_DIR": str(home / ".config" / "oxen"), "XDG_CONFIG_HOME": str(home / ".config")}
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_readme_example_runs_as_written(yoke, tmp_path):
    # The README creates `me/my-dataset` and uploads a file with curl just before; do the same over plain HTTP.
    created = requests.post(
        f"{yoke.url}/api/repos",
        json={"namespace": "me", "name": "my-dataset", "user": {"name": "Me", "email": "me@example.com"}},
    )
    assert created.status_code == 200, created.text
    uploaded = requests.put(
        f"{yoke.url}/api/repos/me/my-dataset/file/main/data/example.txt",
        files={"file": ("example.txt", b"example\n")},
        data={"message": "Add example", "name": "Me", "email": "me@example.com"},
    )
    assert uploaded.status_code == 200, uploaded.text
    script = readme_python_example().replace("localhost:3000", yoke.host)
    run = run_with_own_client_config(script, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "downloaded" / "notes" / "hello.txt").read_bytes() == b"hello from oxenai"
    committed = requests.get(f"{yoke.url}/api/repos/me/my-dataset/file/main/notes/hello.txt")
    assert committed.content == b"hello from oxenai"
    history = requests.get(f"{yoke.url}/api/repos/me/my-dataset/commits/history/main").json()["commits"]
    assert history[0]["message"] == "Add a note"


def test_readme_push_and_clone_example_runs_as_written(yoke, tmp_path):
    script = readme_python_example("PUSH").replace("localhost:3000", yoke.host)
    run = run_with_own_client_config(script, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.rstrip().endswith("a cat")
    assert (tmp_path / "cloned" / "images" / "cat.txt").read_text() == "a cat\n"
    served = requests.get(f"{yoke.url}/api/repos/me/pushed/file/main/images/cat.txt")
    assert served.status_code == 200 and served.content == b"a cat\n"
