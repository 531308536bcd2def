"""RemoteRepo: create (with and without an initial commit), exists, delete."""

import pytest


def test_create_with_initial_commit(remote_repo, yoke_http, oxen_user):
    repo_id = remote_repo.identifier
    assert remote_repo.exists()
    assert yoke_http.repo_status(repo_id) == 200

    # The client seeds the repository with a README.md committed on main.
    branches = yoke_http.branches(repo_id)
    assert list(branches) == ["main"]
    history = yoke_http.history(repo_id, "main")
    assert len(history) == 1
    assert history[0]["id"] == branches["main"]
    assert history[0]["parent_ids"] == []
    assert history[0]["author"] == oxen_user["name"]
    assert history[0]["email"] == oxen_user["email"]
    assert yoke_http.file(repo_id, "main", "README.md") == f"# {remote_repo.name}\n".encode()

    # The client sees the same.
    assert [b.name for b in remote_repo.branches()] == ["main"]
    assert remote_repo.branch().commit_id == branches["main"]
    assert [c.id for c in remote_repo.log().commits] == [history[0]["id"]]
    assert remote_repo.get_file("README.md") == f"# {remote_repo.name}\n".encode()


def test_create_empty(make_remote_repo, yoke_http):
    repo = make_remote_repo(empty=True)
    assert repo.exists()
    assert yoke_http.repo_status(repo.identifier) == 200
    assert yoke_http.branches(repo.identifier) == {}
    assert repo.branches() == []
    assert list(repo.log().commits) == []


def test_exists_is_false_for_a_repository_never_created(make_remote_repo, yoke_http):
    repo = make_remote_repo(create=False)
    assert not repo.exists()
    assert yoke_http.repo_status(repo.identifier) == 404


def test_create_refuses_a_name_that_is_taken(remote_repo, make_remote_repo, yoke_http):
    head = yoke_http.branch_head(remote_repo.identifier, "main")
    with pytest.raises(ValueError, match="409"):
        make_remote_repo(remote_repo.identifier)
    with pytest.raises(ValueError, match="409"):
        make_remote_repo(remote_repo.identifier, empty=True)
    # The first repository is untouched.
    assert yoke_http.branches(remote_repo.identifier) == {"main": head}
    assert len(yoke_http.history(remote_repo.identifier, "main")) == 1


def test_delete(remote_repo, make_remote_repo, yoke_http):
    repo_id = remote_repo.identifier
    remote_repo.delete()
    assert not remote_repo.exists()
    assert yoke_http.repo_status(repo_id) == 404
    assert yoke_http.get(f"/api/repos/{repo_id}/branches").status_code == 404

    # The name is free again, and the new repository starts from scratch.
    again = make_remote_repo(repo_id)
    assert again.exists()
    assert len(yoke_http.history(repo_id, "main")) == 1


def test_delete_and_create_empty_round_trip(make_remote_repo, yoke_http):
    repo = make_remote_repo(empty=True)
    repo.delete()
    assert not repo.exists()
    assert yoke_http.repo_status(repo.identifier) == 404
