"""fsck and gc around what Oxen's own client pushed: gc removes a deleted branch's commits and blobs, and what the
client pushed to main still clones byte for byte, with its history, and takes a further push."""

from __future__ import annotations

import uuid
from pathlib import Path

import oxen
import requests

from test_sync import clone, log_ids, tree_of, write_tree


def admin(yoke, method: str, path: str) -> dict:
    response = requests.request(method, f"{yoke.url}/api/admin/{path}", timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def test_gc_after_a_client_push_keeps_what_branches_reach(yoke, yoke_http, make_remote_repo, oxen_user, tmp_path):
    remote = make_remote_repo(f"pytest/gc-{uuid.uuid4().hex[:12]}", empty=True)
    root = tmp_path / "work"
    root.mkdir()
    repo = oxen.Repo(str(root))
    repo.init()
    main_files = {"data/a.txt": b"kept on main\n", "data/b.bin": bytes(range(256)) * 64}
    write_tree(root, main_files)
    repo.add(str(root / "data"))
    repo.commit("first")
    repo.set_remote("origin", f"{yoke.url}/{remote.identifier}")
    repo.push("origin", "main")

    repo.checkout("feature", create=True)
    write_tree(root, {"data/feature-only.txt": b"only ever on feature\n"})
    repo.add(str(root / "data"))
    repo.commit("on feature")
    repo.push("origin", "feature")
    feature_head = yoke_http.branch_head(remote.identifier, "feature")
    deleted = requests.delete(f"{yoke.url}/api/repos/{remote.identifier}/branches/feature", timeout=30)
    assert deleted.status_code == 200, deleted.text

    report = admin(yoke, "POST", "gc?grace=0")["gc"]
    assert report["commits"] >= 1 and report["blobs"] >= 1, report
    assert requests.get(f"{yoke.url}/api/repos/{remote.identifier}/commits/{feature_head}", timeout=30).status_code == 404
    assert admin(yoke, "GET", "fsck")["fsck"]["clean"]

    copy = clone(yoke, remote, tmp_path / "copy")
    assert tree_of(tmp_path / "copy") == main_files
    repo.checkout("main")
    assert log_ids(copy) == log_ids(repo)

    # The clone keeps working against the collected repository: commit, push, and the server has it.
    write_tree(tmp_path / "copy", {"data/c.txt": b"after gc\n"})
    copy.add(str(tmp_path / "copy" / "data"))
    copy.commit("after gc")
    copy.push("origin", "main")
    assert yoke_http.file(remote.identifier, "main", "data/c.txt") == b"after gc\n"
    assert admin(yoke, "GET", "fsck")["fsck"]["clean"]
