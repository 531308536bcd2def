"""Push, clone, pull with Oxen's own client (oxen.Repo, oxen.clone) against Yoke.

Every result is checked through the client (files on disk, its log) and through plain HTTP (Yoke's history and
file bytes), so a reply that only the client misreads cannot pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import oxen
import pytest
import requests

LARGE = 11 * 1024 * 1024  # over the client's 10 MiB threshold: numbered-part uploads and chunk/ downloads


def tree_of(root: Path) -> dict[str, bytes]:
    """Every file under a working directory (outside .oxen), by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".oxen" not in p.relative_to(root).parts
    }


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


@pytest.fixture
def new_remote(make_remote_repo):
    """An empty repository on the server (Oxen's push never creates one)."""

    def make() -> oxen.RemoteRepo:
        return make_remote_repo(f"pytest/sync-{uuid.uuid4().hex[:12]}", empty=True)

    return make


@pytest.fixture
def local(tmp_path, oxen_user):
    """A fresh local repository with `files` committed as `message`."""

    def make(name: str, files: dict[str, bytes], message: str = "first") -> oxen.Repo:
        root = tmp_path / name
        root.mkdir()
        repo = oxen.Repo(str(root))
        repo.init()
        write_tree(root, files)
        for top in sorted({rel.split("/")[0] for rel in files}):
            repo.add(str(root / top))
        repo.commit(message)
        return repo

    return make


def remote_url(yoke, remote: oxen.RemoteRepo) -> str:
    return f"{yoke.url}/{remote.identifier}"


def clone(yoke, remote: oxen.RemoteRepo, dest: Path, **kwargs) -> oxen.Repo:
    oxen.clone(remote.identifier, str(dest), host=yoke.host, scheme="http", **kwargs)
    return oxen.Repo(str(dest))


def log_ids(repo: oxen.Repo) -> list[str]:
    return [c.id for c in repo.log()]


def assert_server_has(yoke_http, repo_id: str, revision: str, files: dict[str, bytes]) -> None:
    for rel, content in files.items():
        assert yoke_http.file(repo_id, revision, rel) == content, rel


class Proxy:
    """Drives recording_proxy.py, a separate process between the client and Yoke."""

    def __init__(self, upstream: str):
        script = Path(__file__).with_name("recording_proxy.py")
        self.process = subprocess.Popen([sys.executable, str(script), upstream], stdout=subprocess.PIPE, text=True)
        self.host = f"127.0.0.1:{self.process.stdout.readline().strip()}"
        self.control = f"http://{self.host}/__proxy"

    def refuse(self, method: str | None = None, suffix: str = "") -> None:
        requests.put(f"{self.control}/refuse", json={"method": method, "suffix": suffix} if method else {}, timeout=10)

    def clear(self) -> None:
        requests.delete(f"{self.control}/requests", timeout=10)

    def sent(self, method: str, fragment: str) -> list[tuple[str, str, int]]:
        return [tuple(r) for r in requests.get(f"{self.control}/requests", timeout=10).json() if r[0] == method and fragment in r[1]]

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def proxy(yoke):
    p = Proxy(yoke.host)
    yield p
    p.close()


def test_push_to_a_new_repository_then_clone(yoke, yoke_http, new_remote, local, tmp_path, proxy):
    """Nested directories, 10,000 small files in one directory and a file over 10 MiB; then a second push sends
    only what is new; a clone gets identical bytes and history, also of one subtree and with all=True."""
    big = os.urandom(LARGE)
    files = {
        "README.md": b"# pushed by oxen\n",
        "images/cat.jpg": b"\xff\xd8 not really a jpeg",
        "data/train/labels.csv": b"file,label\n1.png,cat\n",
        "data/train/deep/er/notes.txt": "unicode: café 😀\n".encode(),
        "models/weights.bin": big,
    }
    files.update({f"many/f{i:05d}.txt": f"small file {i}\n".encode() for i in range(10_000)})
    remote = new_remote()
    repo = local("first", files)
    repo.set_remote("origin", f"http://{proxy.host}/{remote.identifier}")
    repo.push("origin", "main")

    first_ids = log_ids(repo)
    assert yoke_http.branch_head(remote.identifier, "main") == first_ids[0]
    assert [c["id"] for c in yoke_http.history(remote.identifier, "main")] == first_ids
    assert yoke_http.file(remote.identifier, "main", "models/weights.bin") == big
    assert yoke_http.file(remote.identifier, "main", "many/f09999.txt") == b"small file 9999\n"
    listing = yoke_http.dir(remote.identifier, "main", "many", page_size=5)
    assert listing["total_entries"] == 10_000
    assert listing["entries"][0]["latest_commit"]["id"] == first_ids[0]

    # A second commit: only its own bytes travel (not the large file, not the 10,000).
    proxy.clear()
    root = Path(repo.path)
    write_tree(root, {"data/train/labels.csv": b"file,label\n1.png,cat\n2.png,dog\n", "new.txt": b"new\n"})
    repo.add(str(root / "data"))
    repo.add(str(root / "new.txt"))
    repo.commit("second")
    repo.push("origin", "main")
    assert proxy.sent("POST", "/versions/uploads") == []
    assert sum(size for _, _, size in proxy.sent("POST", "/versions")) < 64 * 1024
    head = log_ids(repo)[0]
    assert yoke_http.branch_head(remote.identifier, "main") == head
    files["data/train/labels.csv"] = b"file,label\n1.png,cat\n2.png,dog\n"
    files["new.txt"] = b"new\n"

    cloned = clone(yoke, remote, tmp_path / "clone")
    assert tree_of(tmp_path / "clone") == files
    assert log_ids(cloned) == log_ids(repo)

    part = clone(yoke, remote, tmp_path / "part", filters="data/train")
    assert tree_of(tmp_path / "part") == {k: v for k, v in files.items() if k.startswith("data/train/")}

    everything = clone(yoke, remote, tmp_path / "all", all=True)
    assert tree_of(tmp_path / "all") == files
    assert log_ids(everything) == log_ids(repo)


def test_clone_of_a_repository_built_on_the_server(yoke, yoke_http, remote_repo, write_file, tmp_path):
    """PUT-style uploads, a workspace commit and a server-side merge: the client clones exactly that."""
    repo_id = remote_repo.identifier
    remote_repo.upload(str(write_file("a.txt", b"alpha\n")), "add a")
    remote_repo.upload(str(write_file("b.csv", b"x,y\n1,2\n")), "add b", dst_dir="tables")
    remote_repo.checkout("main")
    remote_repo.create_branch("feature")
    remote_repo.upload(str(write_file("f.txt", b"feature\n")), "feature file", branch="feature", dst_dir="deep/er")
    remote_repo.upload(str(write_file("a2.txt", b"alpha two\n")), "main moves", file_name="a2.txt")
    remote_repo.merge("main", "feature")

    expected = {
        "README.md": yoke_http.file(repo_id, "main", "README.md"),
        "a.txt": b"alpha\n",
        "a2.txt": b"alpha two\n",
        "tables/b.csv": b"x,y\n1,2\n",
        "deep/er/f.txt": b"feature\n",
    }
    cloned = clone(yoke, remote_repo, tmp_path / "clone")
    assert tree_of(tmp_path / "clone") == expected
    server_history = [c["id"] for c in yoke_http.history(repo_id, "main")]
    assert log_ids(cloned) == server_history
    assert len(cloned.log()[0].parent_ids) == 2  # the merge commit

    feature = clone(yoke, remote_repo, tmp_path / "feature", branch="feature")
    assert tree_of(tmp_path / "feature") == {k: v for k, v in expected.items() if k != "a2.txt"}

    # The clone can build on the server's tree: its commit and push land on top.
    write_tree(tmp_path / "clone", {"deep/er/g.txt": b"from the clone\n"})
    cloned.add(str(tmp_path / "clone" / "deep"))
    cloned.commit("clone adds g")
    cloned.push("origin", "main")
    assert yoke_http.branch_head(repo_id, "main") == log_ids(cloned)[0]
    assert_server_has(yoke_http, repo_id, "main", {**expected, "deep/er/g.txt": b"from the clone\n"})


def test_pull_fast_forward_three_way_and_a_push_that_is_behind(yoke, yoke_http, remote_repo, write_file, tmp_path):
    repo_id = remote_repo.identifier
    remote_repo.upload(str(write_file("shared.txt", b"shared\n")), "shared")
    cloned = clone(yoke, remote_repo, tmp_path / "clone")
    root = tmp_path / "clone"

    remote_repo.upload(str(write_file("server1.txt", b"one\n")), "server one", dst_dir="s")
    cloned.pull("origin", "main")
    assert (root / "s" / "server1.txt").read_bytes() == b"one\n"
    assert log_ids(cloned)[0] == yoke_http.branch_head(repo_id, "main")

    # Diverge: the server and the clone each commit.
    remote_repo.upload(str(write_file("server2.txt", b"two\n")), "server two", dst_dir="s")
    server_head = yoke_http.branch_head(repo_id, "main")
    write_tree(root, {"local.txt": b"local\n"})
    cloned.add(str(root / "local.txt"))
    cloned.commit("local change")
    with pytest.raises(Exception, match="behind"):
        cloned.push("origin", "main")
    assert yoke_http.branch_head(repo_id, "main") == server_head

    cloned.pull("origin", "main")
    merge = cloned.log()[0]
    assert len(merge.parent_ids) == 2 and server_head in merge.parent_ids
    assert (root / "s" / "server2.txt").read_bytes() == b"two\n"
    cloned.push("origin", "main")
    assert yoke_http.branch_head(repo_id, "main") == merge.id
    assert_server_has(yoke_http, repo_id, "main", {"local.txt": b"local\n", "s/server2.txt": b"two\n", "shared.txt": b"shared\n"})


def test_two_clients_push_to_one_branch_at_once(yoke, yoke_http, remote_repo, write_file, tmp_path):
    """One push wins; the other is told to pull (nothing is lost), and after pulling it pushes too."""
    repo_id = remote_repo.identifier
    remote_repo.upload(str(write_file("base.txt", b"base\n")), "base")
    clients = []
    for name in ("alice", "bob"):
        repo = clone(yoke, remote_repo, tmp_path / name)
        write_tree(tmp_path / name, {f"{name}.txt": f"{name}\n".encode()})
        repo.add(str(tmp_path / name / f"{name}.txt"))
        repo.commit(f"{name} adds a file")
        clients.append((name, repo))

    outcomes: dict[str, Exception | None] = {}
    barrier = threading.Barrier(2)

    def push(name, repo):
        barrier.wait()
        try:
            repo.push("origin", "main")
            outcomes[name] = None
        except Exception as err:  # noqa: BLE001 - the client raises ValueError with the server's message
            outcomes[name] = err

    threads = [threading.Thread(target=push, args=c) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, err in outcomes.items() if err is None]
    assert len(winners) == 1, outcomes
    loser = next(n for n in outcomes if n not in winners)
    assert "behind" in str(outcomes[loser]) or "409" in str(outcomes[loser]) or "pull" in str(outcomes[loser])
    repos = dict(clients)
    assert yoke_http.branch_head(repo_id, "main") == log_ids(repos[winners[0]])[0]

    repos[loser].pull("origin", "main")
    repos[loser].push("origin", "main")
    assert_server_has(yoke_http, repo_id, "main", {"alice.txt": b"alice\n", "bob.txt": b"bob\n", "base.txt": b"base\n"})


def test_a_push_cut_off_and_run_again_completes(yoke, yoke_http, new_remote, local, proxy):
    """Cut off once while sending nodes, once while moving the branch: each re-run finishes the push, and a commit
    whose nodes did not all arrive is asked for again."""
    remote = new_remote()
    files = {"a.txt": b"a\n", "dir/b.txt": b"b\n"}
    repo = local("cut", files)
    repo.set_remote("origin", f"http://{proxy.host}/{remote.identifier}")

    proxy.refuse("POST", "/tree/nodes")
    with pytest.raises(Exception):
        repo.push("origin", "main")
    assert yoke_http.get(f"/api/repos/{remote.identifier}/branches/main").status_code == 404

    proxy.refuse("POST", "/branches")
    with pytest.raises(Exception):
        repo.push("origin", "main")
    assert proxy.sent("POST", "/tree/nodes")[-1][2] > 0  # the commit was sent again after the first cut

    proxy.refuse(None)
    proxy.clear()
    repo.push("origin", "main")
    assert proxy.sent("POST", "/tree/nodes") == []  # the second attempt had delivered everything but the branch
    assert yoke_http.branch_head(remote.identifier, "main") == log_ids(repo)[0]
    assert_server_has(yoke_http, remote.identifier, "main", files)
