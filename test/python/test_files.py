"""RemoteRepo and files: add + commit, upload (put_file), get_file, metadata, file_exists, file_has_changes,
delete_file."""

import pytest
from oxen import Workspace


def test_add_and_commit_through_the_remote_repo(remote_repo, yoke_http, write_file, oxen_user):
    repo_id = remote_repo.identifier
    initial = yoke_http.branch_head(repo_id, "main")
    local = write_file("hello.txt", b"hello, yoke\n")

    workspace = remote_repo.add(str(local))
    assert remote_repo.status().added_files() == ["hello.txt"]
    assert [w["id"] for w in yoke_http.workspaces(repo_id)] == [workspace.id]
    # Staged is not committed: main does not have the file yet.
    assert yoke_http.file_status(repo_id, "main", "hello.txt") == 404

    commit = remote_repo.commit("Add hello")
    assert commit.message == "Add hello"
    assert commit.parent_ids == [initial]
    assert commit.author == oxen_user["name"]
    assert commit.email == oxen_user["email"]

    assert yoke_http.branch_head(repo_id, "main") == commit.id
    history = yoke_http.history(repo_id, "main")
    assert [c["id"] for c in history] == [commit.id, initial]
    assert history[0]["message"] == "Add hello"
    assert yoke_http.file(repo_id, "main", "hello.txt") == b"hello, yoke\n"
    assert yoke_http.file(repo_id, commit.id, "hello.txt") == b"hello, yoke\n"
    assert remote_repo.get_file("hello.txt") == b"hello, yoke\n"
    assert [c.id for c in remote_repo.log().commits] == [commit.id, initial]
    # A workspace without a name is gone once committed.
    assert yoke_http.workspaces(repo_id) == []
    assert yoke_http.get(f"/api/repos/{repo_id}/workspaces/{workspace.id}").status_code == 404


def test_add_into_a_directory_then_commit_again(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    first = write_file("one.csv", b"a,b\n1,2\n")
    second = write_file("two.bin", bytes(range(256)) * 4)

    remote_repo.add(str(first), "tables/2024")
    assert remote_repo.status().added_files() == ["tables/2024/one.csv"]
    c1 = remote_repo.commit("one")
    # The unnamed workspace was committed, so the next add opens a new one.
    remote_repo.add(str(second), "blobs")
    c2 = remote_repo.commit("two")
    assert c2.parent_ids == [c1.id]

    assert yoke_http.file(repo_id, "main", "tables/2024/one.csv") == b"a,b\n1,2\n"
    assert yoke_http.file(repo_id, "main", "blobs/two.bin") == bytes(range(256)) * 4
    assert [c["message"] for c in yoke_http.history(repo_id, "main")] == ["two", "one", "Initial commit"]
    listing = yoke_http.dir(repo_id, "main")
    assert sorted(e["filename"] for e in listing["entries"]) == ["README.md", "blobs", "tables"]


def test_upload_puts_a_file_and_commits_it(remote_repo, yoke_http, write_file, oxen_user):
    repo_id = remote_repo.identifier
    before = yoke_http.branch_head(repo_id, "main")
    local = write_file("report.txt", b"quarterly numbers\n")

    remote_repo.upload(str(local), "Upload the report", file_name="renamed.txt", dst_dir="docs/reports")

    assert yoke_http.file(repo_id, "main", "docs/reports/renamed.txt") == b"quarterly numbers\n"
    history = yoke_http.history(repo_id, "main")
    assert len(history) == 2
    assert history[0]["message"] == "Upload the report"
    assert history[0]["parent_ids"] == [before]
    assert history[0]["author"] == oxen_user["name"]
    assert history[0]["email"] == oxen_user["email"]
    assert remote_repo.get_file("docs/reports/renamed.txt") == b"quarterly numbers\n"

    # Uploading to the root keeps the local file name; uploading onto an existing path replaces it.
    remote_repo.upload(str(local), "root copy")
    local.write_bytes(b"revised numbers\n")
    remote_repo.upload(str(local), "revise", file_name="renamed.txt", dst_dir="docs/reports")
    assert yoke_http.file(repo_id, "main", "report.txt") == b"quarterly numbers\n"
    assert yoke_http.file(repo_id, "main", "docs/reports/renamed.txt") == b"revised numbers\n"
    assert [c["message"] for c in yoke_http.history(repo_id, "main")][:3] == ["revise", "root copy", "Upload the report"]


def test_upload_to_another_branch(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    main_head = yoke_http.branch_head(repo_id, "main")
    remote_repo.create_branch("side")
    local = write_file("side.txt", b"only on side\n")

    remote_repo.upload(str(local), "side only", branch="side")

    assert yoke_http.file(repo_id, "side", "side.txt") == b"only on side\n"
    assert yoke_http.file_status(repo_id, "main", "side.txt") == 404
    assert yoke_http.branch_head(repo_id, "main") == main_head
    assert yoke_http.history(repo_id, "side")[0]["message"] == "side only"


def test_get_file_at_a_revision(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    local = write_file("weights.txt", b"version 1\n")
    remote_repo.upload(str(local), "v1")
    v1 = yoke_http.branch_head(repo_id, "main")
    local.write_bytes(b"version 2, longer\n")
    remote_repo.upload(str(local), "v2")
    v2 = yoke_http.branch_head(repo_id, "main")
    assert v1 != v2

    assert remote_repo.get_file("weights.txt") == b"version 2, longer\n"
    assert remote_repo.get_file("weights.txt", revision=v1) == b"version 1\n"
    assert remote_repo.get_file("weights.txt", revision=v2) == b"version 2, longer\n"
    assert yoke_http.file(repo_id, v1, "weights.txt") == b"version 1\n"
    assert yoke_http.file(repo_id, v2, "weights.txt") == b"version 2, longer\n"
    with pytest.raises(ValueError, match="404"):
        remote_repo.get_file("no/such/file.txt")


def test_metadata_of_a_file_and_a_directory(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    content = b"x,y\n" + b"1,2\n" * 100
    remote_repo.upload(str(write_file("points.csv", content)), "points", dst_dir="data/tables")
    head = yoke_http.branch_head(repo_id, "main")

    meta = remote_repo.metadata("data/tables/points.csv")
    assert meta.filename == "points.csv"
    assert meta.is_dir is False
    assert meta.size == len(content)
    assert meta.mime_type == "text/csv"

    http_meta = yoke_http.json(f"/api/repos/{repo_id}/meta/main/data/tables/points.csv")["entry"]
    assert http_meta["filename"] == "points.csv"
    assert http_meta["size"] == len(content)
    assert http_meta["hash"] == meta.hash
    assert http_meta["is_dir"] is False
    assert http_meta["latest_commit"]["id"] == head

    dir_meta = remote_repo.metadata("data")
    assert dir_meta.filename == "data"
    assert dir_meta.is_dir is True
    assert dir_meta.size == len(content)
    http_dir = yoke_http.json(f"/api/repos/{repo_id}/meta/main/data")["entry"]
    assert http_dir["is_dir"] is True
    assert http_dir["latest_commit"]["id"] == head

    assert remote_repo.metadata("data/missing.csv") is None
    assert yoke_http.get(f"/api/repos/{repo_id}/meta/main/data/missing.csv").status_code == 404


def test_file_exists(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    initial = yoke_http.branch_head(repo_id, "main")
    remote_repo.upload(str(write_file("here.txt", b"here\n")), "here", dst_dir="a/b")

    assert remote_repo.file_exists("a/b/here.txt")
    assert remote_repo.file_exists("README.md")
    assert not remote_repo.file_exists("a/b/absent.txt")
    assert not remote_repo.file_exists("nowhere/absent.txt")
    # Not there before it was committed.
    assert not remote_repo.file_exists("a/b/here.txt", revision=initial)
    assert yoke_http.file_status(repo_id, initial, "a/b/here.txt") == 404


def test_file_has_changes(remote_repo, write_file, tmp_path, monkeypatch):
    local = write_file("tracked.txt", b"same bytes\n")
    remote_repo.upload(str(local), "tracked", dst_dir="t")

    assert remote_repo.file_has_changes(str(local), "t/tracked.txt") is False
    local.write_bytes(b"other bytes\n")
    assert remote_repo.file_has_changes(str(local), "t/tracked.txt") is True
    # A path the remote does not have is a change.
    assert remote_repo.file_has_changes(str(local), "t/untracked.txt") is True
    # remote_path defaults to the local path.
    monkeypatch.chdir(tmp_path / "local")
    (tmp_path / "local" / "t").mkdir()
    (tmp_path / "local" / "t" / "tracked.txt").write_bytes(b"same bytes\n")
    assert remote_repo.file_has_changes("t/tracked.txt") is False


def test_delete_file(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    remote_repo.upload(str(write_file("keep.txt", b"keep\n")), "keep", dst_dir="docs")
    remote_repo.upload(str(write_file("drop.txt", b"drop\n")), "drop", dst_dir="docs")
    before = yoke_http.branch_head(repo_id, "main")

    remote_repo.delete_file("docs/drop.txt")

    history = yoke_http.history(repo_id, "main")
    assert history[0]["message"] == "Removed 'docs/drop.txt'"
    assert history[0]["parent_ids"] == [before]
    assert yoke_http.file_status(repo_id, "main", "docs/drop.txt") == 404
    assert yoke_http.file(repo_id, "main", "docs/keep.txt") == b"keep\n"
    assert not remote_repo.file_exists("docs/drop.txt")
    # The older commit still has it.
    assert yoke_http.file(repo_id, before, "docs/drop.txt") == b"drop\n"

    remote_repo.delete_file("docs/keep.txt", commit_message="Drop the last one")
    assert yoke_http.history(repo_id, "main")[0]["message"] == "Drop the last one"
    assert yoke_http.file_status(repo_id, "main", "docs/keep.txt") == 404


def test_delete_a_committed_directory(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    workspace = Workspace(remote_repo, "main")
    base = write_file("tree/x/1.txt", b"1").parent.parent
    write_file("tree/x/y/2.txt", b"2")
    write_file("tree/z.txt", b"z")
    workspace.add_files(base.parent, [base / "x" / "1.txt", base / "x" / "y" / "2.txt", base / "z.txt"])
    workspace.commit("tree")

    remote_repo.delete_file("tree/x")

    assert yoke_http.file_status(repo_id, "main", "tree/x/1.txt") == 404
    assert yoke_http.file_status(repo_id, "main", "tree/x/y/2.txt") == 404
    assert yoke_http.file(repo_id, "main", "tree/z.txt") == b"z"
    assert yoke_http.history(repo_id, "main")[0]["message"] == "Removed 'tree/x'"


def test_delete_workspace_through_the_remote_repo(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")
    workspace = remote_repo.add(str(write_file("abandoned.txt", b"never committed\n")))
    assert [w["id"] for w in yoke_http.workspaces(repo_id)] == [workspace.id]

    remote_repo.delete_workspace()

    assert yoke_http.workspaces(repo_id) == []
    assert yoke_http.branch_head(repo_id, "main") == head
    assert yoke_http.file_status(repo_id, "main", "abandoned.txt") == 404
    with pytest.raises(ValueError):
        remote_repo.status()  # no workspace is open any more
