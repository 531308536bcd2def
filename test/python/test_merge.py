"""RemoteRepo.merge and mergeable (fast-forward, a clean three-way merge, a conflict), and RemoteRepo.diff."""

import pytest


def change_name(line) -> str:
    return str(line.modification).rsplit(".", 1)[-1]


@pytest.fixture
def forked(remote_repo, yoke_http, write_file):
    """main has shared.txt and notes.txt; branch `feature` starts there."""
    remote_repo.upload(str(write_file("shared.txt", b"one\ntwo\nthree\n")), "shared")
    remote_repo.upload(str(write_file("notes.txt", b"notes\n")), "notes")
    remote_repo.checkout("main")  # the client creates branches from the commit it last saw
    remote_repo.create_branch("feature")
    return remote_repo


def upload(repo, write_file, name, content, message, branch, dst_dir=""):
    repo.upload(str(write_file(f"{branch}/{name}", content)), message, file_name=name, dst_dir=dst_dir, branch=branch)


def test_fast_forward_merge(forked, yoke_http, write_file):
    repo_id = forked.identifier
    upload(forked, write_file, "new.txt", b"new\n", "feature adds new", "feature")
    feature_head = yoke_http.branch_head(repo_id, "feature")

    mergeable = forked.mergeable("main", "feature")
    assert mergeable.is_mergeable is True
    assert list(mergeable.conflict_files) == []
    assert [c.id for c in mergeable.commits] == [feature_head]

    forked.merge("main", "feature")
    assert yoke_http.branch_head(repo_id, "main") == feature_head
    assert yoke_http.file(repo_id, "main", "new.txt") == b"new\n"


def test_clean_three_way_merge(forked, yoke_http, write_file, oxen_user):
    repo_id = forked.identifier
    upload(forked, write_file, "from-feature.txt", b"feature side\n", "feature work", "feature", "data")
    upload(forked, write_file, "notes.txt", b"notes, edited on feature\n", "feature edits notes", "feature")
    upload(forked, write_file, "from-main.txt", b"main side\n", "main work", "main", "data")
    main_head = yoke_http.branch_head(repo_id, "main")
    feature_head = yoke_http.branch_head(repo_id, "feature")

    mergeable = forked.mergeable("main", "feature")
    assert mergeable.is_mergeable is True
    assert list(mergeable.conflict_files) == []
    assert {c.message for c in mergeable.commits} == {"feature work", "feature edits notes"}

    merge = forked.merge("main", "feature")
    assert sorted(merge.parent_ids) == sorted([main_head, feature_head])

    assert yoke_http.branch_head(repo_id, "main") == merge.id
    history = yoke_http.history(repo_id, "main")
    assert history[0]["id"] == merge.id
    assert sorted(history[0]["parent_ids"]) == sorted([main_head, feature_head])
    ids = {c["id"] for c in history}
    assert {main_head, feature_head} <= ids
    assert yoke_http.file(repo_id, "main", "data/from-feature.txt") == b"feature side\n"
    assert yoke_http.file(repo_id, "main", "data/from-main.txt") == b"main side\n"
    assert yoke_http.file(repo_id, "main", "notes.txt") == b"notes, edited on feature\n"
    assert yoke_http.file(repo_id, "main", "shared.txt") == b"one\ntwo\nthree\n"
    # The head branch is not moved by merging it.
    assert yoke_http.branch_head(repo_id, "feature") == feature_head
    assert forked.get_file("data/from-feature.txt", revision="main") == b"feature side\n"


def test_merge_with_a_conflict(forked, yoke_http, write_file):
    repo_id = forked.identifier
    upload(forked, write_file, "shared.txt", b"one\nTWO (feature)\nthree\n", "feature edits shared", "feature")
    upload(forked, write_file, "shared.txt", b"one\nTWO (main)\nthree\n", "main edits shared", "main")
    main_head = yoke_http.branch_head(repo_id, "main")
    feature_head = yoke_http.branch_head(repo_id, "feature")

    mergeable = forked.mergeable("main", "feature")
    assert mergeable.is_mergeable is False
    assert list(mergeable.conflict_files) == ["shared.txt"]

    with pytest.raises(ValueError, match="(?i)conflict"):
        forked.merge("main", "feature")
    # Nothing moved, nothing changed.
    assert yoke_http.branches(repo_id) == {"main": main_head, "feature": feature_head}
    assert yoke_http.file(repo_id, "main", "shared.txt") == b"one\nTWO (main)\nthree\n"
    assert yoke_http.file(repo_id, "feature", "shared.txt") == b"one\nTWO (feature)\nthree\n"


def test_merge_of_a_branch_already_merged(forked, yoke_http):
    repo_id = forked.identifier
    head = yoke_http.branch_head(repo_id, "main")
    mergeable = forked.mergeable("main", "feature")
    assert mergeable.is_mergeable is True
    assert list(mergeable.commits) == []
    forked.merge("main", "feature")
    assert yoke_http.branch_head(repo_id, "main") == head


def test_diff_of_a_text_file(forked, yoke_http, write_file):
    repo_id = forked.identifier
    upload(forked, write_file, "shared.txt", b"one\nTWO\nthree\nfour\n", "feature edits shared", "feature")

    lines = forked.diff("main", "feature", "shared.txt").lines
    assert [(change_name(l), l.text) for l in lines] == [
        ("Unchanged", "one"),
        ("Removed", "two"),
        ("Added", "TWO"),
        ("Unchanged", "three"),
        ("Added", "four"),
    ]
    # Between commits, and the other way round.
    main_head = yoke_http.branch_head(repo_id, "main")
    feature_head = yoke_http.branch_head(repo_id, "feature")
    backwards = forked.diff(feature_head, main_head, "shared.txt").lines
    assert [(change_name(l), l.text) for l in backwards] == [
        ("Unchanged", "one"),
        ("Removed", "TWO"),
        ("Added", "two"),
        ("Unchanged", "three"),
        ("Removed", "four"),
    ]

    http = yoke_http.json(f"/api/repos/{repo_id}/compare/file/main..feature/shared.txt")
    compare = http["compare"]
    assert compare["status"] == "modified"
    assert [(l["modification"], l["text"]) for l in compare["diff"]["lines"]] == [
        (change_name(l), l.text) for l in lines
    ]
    assert compare["base_commit"]["id"] == main_head
    assert compare["head_commit"]["id"] == feature_head
