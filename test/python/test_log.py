"""RemoteRepo.log: a branch's history with pagination, a path's history, another revision."""

import pytest


@pytest.fixture
def history_repo(remote_repo, write_file):
    """main: Initial commit, then a.txt, b.txt, a.txt again, c.txt (newest last)."""
    a = write_file("a.txt", b"a1\n")
    remote_repo.upload(str(a), "add a", dst_dir="files")
    remote_repo.upload(str(write_file("b.txt", b"b\n")), "add b", dst_dir="files")
    a.write_bytes(b"a2\n")
    remote_repo.upload(str(a), "change a", dst_dir="files")
    remote_repo.upload(str(write_file("c.txt", b"c\n")), "add c", dst_dir="other")
    return remote_repo


MESSAGES = ["add c", "change a", "add b", "add a", "Initial commit"]


def test_log_of_a_branch(history_repo, yoke_http):
    http = yoke_http.history(history_repo.identifier, "main")
    assert [c["message"] for c in http] == MESSAGES
    log = history_repo.log(page_size=10)
    assert [c.id for c in log.commits] == [c["id"] for c in http]
    assert [c.message for c in log.commits] == MESSAGES
    assert log.has_more is False
    assert log.pagination.total_entries == 5
    assert log.pagination.total_pages == 1
    # Each commit's parent is the next one down.
    for newer, older in zip(log.commits, log.commits[1:]):
        assert newer.parent_ids == [older.id]


def test_log_pages(history_repo, yoke_http):
    ids = [c["id"] for c in yoke_http.history(history_repo.identifier, "main")]
    first = history_repo.log(page_num=1, page_size=2)
    second = history_repo.log(page_num=2, page_size=2)
    third = history_repo.log(page_num=3, page_size=2)
    assert [c.id for c in first.commits] == ids[0:2]
    assert [c.id for c in second.commits] == ids[2:4]
    assert [c.id for c in third.commits] == ids[4:5]
    assert (first.has_more, second.has_more, third.has_more) == (True, True, False)
    assert first.pagination.total_entries == 5
    assert first.pagination.total_pages == 3
    assert first.pagination.page_size == 2
    assert third.pagination.page_number == 3

    http = yoke_http.json(f"/api/repos/{history_repo.identifier}/commits/history/main?page=2&page_size=2")
    assert [c["id"] for c in http["commits"]] == ids[2:4]
    assert (http["page_number"], http["page_size"], http["total_pages"], http["total_entries"]) == (2, 2, 3, 5)


def test_log_of_a_path(history_repo, yoke_http):
    repo_id = history_repo.identifier
    by_message = {c["message"]: c["id"] for c in yoke_http.history(repo_id, "main")}

    log = history_repo.log(path="files/a.txt")
    assert [c.message for c in log.commits] == ["change a", "add a"]
    assert [c.id for c in log.commits] == [by_message["change a"], by_message["add a"]]
    assert log.has_more is False

    # A directory's history holds every commit that changed something beneath it.
    assert [c.message for c in history_repo.log(path="files").commits] == ["change a", "add b", "add a"]
    assert [c.message for c in history_repo.log(path="other/c.txt").commits] == ["add c"]

    http = yoke_http.json(f"/api/repos/{repo_id}/commits/history/main/files/a.txt?page=1&page_size=10")
    assert [c["id"] for c in http["commits"]] == [by_message["change a"], by_message["add a"]]
    assert http["has_more"] is False


def test_log_of_a_path_in_pages(history_repo):
    first = history_repo.log(path="files", page_num=1, page_size=2)
    second = history_repo.log(path="files", page_num=2, page_size=2)
    assert [c.message for c in first.commits] == ["change a", "add b"]
    assert first.has_more is True
    assert [c.message for c in second.commits] == ["add a"]
    assert second.has_more is False


def test_log_of_another_revision(history_repo, yoke_http):
    repo_id = history_repo.identifier
    by_message = {c["message"]: c["id"] for c in yoke_http.history(repo_id, "main")}
    # Of a commit: that commit and its ancestors.
    assert [c.message for c in history_repo.log(revision=by_message["add b"]).commits] == ["add b", "add a", "Initial commit"]
    # Of another branch, which does not see main's later commits.
    history_repo.checkout(by_message["add a"])
    history_repo.create_branch("old")
    assert yoke_http.branch_head(repo_id, "old") == by_message["add a"]
    assert [c.message for c in history_repo.log(revision="old").commits] == ["add a", "Initial commit"]
    assert [c["message"] for c in yoke_http.history(repo_id, "old")] == ["add a", "Initial commit"]
