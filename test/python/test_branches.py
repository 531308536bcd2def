"""Branches through RemoteRepo: create_branch, branches, branch, branch_exists, get_branch, delete_branch,
checkout, create_checkout_branch."""

import pytest
from oxen import Workspace


def test_create_and_list_branches(remote_repo, yoke_http):
    repo_id = remote_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")

    created = remote_repo.create_branch("feature")
    assert created.name == "feature"
    assert created.commit_id == head

    assert yoke_http.branches(repo_id) == {"main": head, "feature": head}
    assert sorted(b.name for b in remote_repo.branches()) == ["feature", "main"]
    assert {b.name: b.commit_id for b in remote_repo.branches()} == {"main": head, "feature": head}
    assert remote_repo.branch_exists("feature")
    assert remote_repo.branch_exists("main")
    assert not remote_repo.branch_exists("nope")
    assert remote_repo.get_branch("feature").commit_id == head
    with pytest.raises(ValueError):
        remote_repo.get_branch("nope")
    assert yoke_http.get(f"/api/repos/{repo_id}/branches/nope").status_code == 404
    # The checked-out branch is still main.
    assert remote_repo.revision == "main"
    assert remote_repo.branch().name == "main"


def test_create_branch_from_the_checked_out_commit(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    initial = yoke_http.branch_head(repo_id, "main")
    remote_repo.upload(str(write_file("later.txt", b"later\n")), "later")
    later = yoke_http.branch_head(repo_id, "main")

    assert remote_repo.checkout(initial) == initial
    remote_repo.create_branch("from-initial")
    remote_repo.checkout("main")
    remote_repo.create_branch("from-later")

    assert yoke_http.branches(repo_id) == {"main": later, "from-initial": initial, "from-later": later}
    assert yoke_http.file_status(repo_id, "from-initial", "later.txt") == 404
    assert yoke_http.file(repo_id, "from-later", "later.txt") == b"later\n"


def test_checkout(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    main_head = yoke_http.branch_head(repo_id, "main")
    remote_repo.create_branch("feature")

    assert remote_repo.checkout("feature") == "feature"
    assert remote_repo.revision == "feature"
    assert remote_repo.branch().name == "feature"
    # Writes go to the checked-out branch, reads come from it.
    remote_repo.upload(str(write_file("f.txt", b"feature only\n")), "on feature")
    assert yoke_http.file(repo_id, "feature", "f.txt") == b"feature only\n"
    assert yoke_http.file_status(repo_id, "main", "f.txt") == 404
    assert yoke_http.branch_head(repo_id, "main") == main_head
    assert remote_repo.get_file("f.txt") == b"feature only\n"
    assert remote_repo.file_exists("f.txt")
    assert not remote_repo.file_exists("f.txt", revision="main")

    assert remote_repo.checkout("main") == "main"
    assert not remote_repo.file_exists("f.txt")

    with pytest.raises(ValueError):
        remote_repo.checkout("no-such-branch")
    assert remote_repo.revision == "main"


def test_checkout_create(remote_repo, yoke_http):
    repo_id = remote_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")
    assert remote_repo.checkout("made-by-checkout", create=True) == "made-by-checkout"
    assert remote_repo.revision == "made-by-checkout"
    assert yoke_http.branches(repo_id) == {"main": head, "made-by-checkout": head}


def test_create_checkout_branch(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")

    assert remote_repo.create_checkout_branch("topic") == "topic"
    assert remote_repo.revision == "topic"
    assert yoke_http.branches(repo_id) == {"main": head, "topic": head}

    remote_repo.upload(str(write_file("t.txt", b"t\n")), "topic work")
    topic_head = yoke_http.branch_head(repo_id, "topic")
    assert topic_head != head

    # An existing branch is checked out as it is, not moved.
    remote_repo.checkout("main")
    assert remote_repo.create_checkout_branch("topic") == "topic"
    assert yoke_http.branches(repo_id) == {"main": head, "topic": topic_head}
    assert remote_repo.get_file("t.txt") == b"t\n"


def test_workspace_commit_on_a_branch_leaves_main_alone(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    main_head = yoke_http.branch_head(repo_id, "main")
    remote_repo.create_branch("data")
    workspace = Workspace(remote_repo, "data")
    workspace.add(str(write_file("d.txt", b"data\n")))
    commit = workspace.commit("data only")

    assert commit.parent_ids == [main_head]
    assert yoke_http.branches(repo_id) == {"main": main_head, "data": commit.id}
    assert yoke_http.file(repo_id, "data", "d.txt") == b"data\n"
    assert yoke_http.file_status(repo_id, "main", "d.txt") == 404


def test_branch_names_with_slashes(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")
    remote_repo.create_branch("user/feature-1")
    assert remote_repo.branch_exists("user/feature-1")
    assert remote_repo.get_branch("user/feature-1").commit_id == head
    remote_repo.upload(str(write_file("s.txt", b"slashed\n")), "slashed", dst_dir="in/dir", branch="user/feature-1")
    assert yoke_http.file(repo_id, "user/feature-1", "in/dir/s.txt") == b"slashed\n"
    assert remote_repo.get_file("in/dir/s.txt", revision="user/feature-1") == b"slashed\n"
    remote_repo.delete_branch("user/feature-1")
    assert yoke_http.branches(repo_id) == {"main": head}


def test_delete_branch(remote_repo, yoke_http):
    repo_id = remote_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")
    remote_repo.create_branch("doomed")

    remote_repo.delete_branch("doomed")
    assert yoke_http.branches(repo_id) == {"main": head}
    assert not remote_repo.branch_exists("doomed")
    assert yoke_http.get(f"/api/repos/{repo_id}/branches/doomed").status_code == 404
    # Deleting it again fails: there is nothing to delete.
    with pytest.raises(ValueError):
        remote_repo.delete_branch("doomed")


def test_deleting_the_default_branch_fails(remote_repo, yoke_http):
    repo_id = remote_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")
    remote_repo.create_branch("other")

    with pytest.raises(ValueError):
        remote_repo.delete_branch("main")
    assert yoke_http.branches(repo_id) == {"main": head, "other": head}
    assert remote_repo.branch_exists("main")

    res = yoke_http.request("DELETE", f"/api/repos/{repo_id}/branches/main")
    assert 400 <= res.status_code < 500, f"{res.status_code} {res.text[:300]}"
    assert res.json()["status"] == "error"
    assert yoke_http.branch_head(repo_id, "main") == head
    assert yoke_http.file(repo_id, "main", "README.md") == f"# {remote_repo.name}\n".encode()
