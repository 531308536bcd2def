"""oxen.Workspace: unnamed and named workspaces, add (one file, several, directories, nested paths, a file above
the client's 10 MiB segment), add_bytes, rm, unstage, status, commit, delete; RemoteRepo.list_workspaces."""

import os
import re

import pytest
from oxen import Workspace


def client_workspaces(remote_repo) -> list[dict]:
    """RemoteRepo.list_workspaces, as dicts: 0.65's PyWorkspaceResponse exposes only created_at as an
    attribute, and the rest in its repr: Workspace(id='…', name='…', commit_id='…', created_at='…')."""
    found = []
    for w in remote_repo.list_workspaces():
        fields = dict(re.findall(r"(\w+)=(?:'([^']*)'|None)", repr(w)))
        found.append({k: (v or None) for k, v in fields.items()})
    return found


def test_unnamed_workspace(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")

    workspace = Workspace(remote_repo, "main")
    assert workspace.id
    assert workspace.name is None
    assert workspace.branch == "main"
    assert workspace.commit_id == head
    listed = yoke_http.workspaces(repo_id)
    assert [w["id"] for w in listed] == [workspace.id]
    assert [w["id"] for w in client_workspaces(remote_repo)] == [workspace.id]
    assert yoke_http.get(f"/api/repos/{repo_id}/workspaces/{workspace.id}").status_code == 200

    assert workspace.add(str(write_file("one.txt", b"one\n"))) == []
    status = workspace.status()
    assert status.added_files() == ["one.txt"]
    assert status.is_dirty()
    assert yoke_http.file_status(repo_id, "main", "one.txt") == 404

    commit = workspace.commit("from an unnamed workspace")
    assert commit.parent_ids == [head]
    assert yoke_http.branch_head(repo_id, "main") == commit.id
    assert yoke_http.file(repo_id, "main", "one.txt") == b"one\n"
    assert yoke_http.history(repo_id, "main")[0]["message"] == "from an unnamed workspace"
    # Committed, an unnamed workspace is gone.
    assert yoke_http.workspaces(repo_id) == []
    assert remote_repo.list_workspaces() == []
    assert yoke_http.get(f"/api/repos/{repo_id}/workspaces/{workspace.id}").status_code == 404


def test_named_workspace_reopened_and_committed_from_twice(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    initial = yoke_http.branch_head(repo_id, "main")

    workspace = Workspace(remote_repo, "main", workspace_name="labelling")
    assert workspace.name == "labelling"
    assert workspace.commit_id == initial
    [only] = client_workspaces(remote_repo)
    assert (only["id"], only["name"], only["commit_id"]) == (workspace.id, "labelling", initial)

    a = write_file("a.txt", b"a1\n")
    workspace.add(str(a))
    first = workspace.commit("first from labelling")
    assert first.parent_ids == [initial]
    # A named workspace stays, and now stands on its commit.
    [over_http] = yoke_http.workspaces(repo_id)
    assert over_http["id"] == workspace.id
    assert over_http["name"] == "labelling"
    assert over_http["commit"]["id"] == first.id
    assert [(w["id"], w["commit_id"]) for w in client_workspaces(remote_repo)] == [(workspace.id, first.id)]

    # Opening it again by name gives the same workspace, at its new commit, with nothing staged.
    again = Workspace(remote_repo, "main", workspace_name="labelling")
    assert again.id == workspace.id
    assert again.name == "labelling"
    assert again.commit_id == first.id
    assert again.status().added_files() == []
    assert again.status().is_clean()

    again.add(str(write_file("b.txt", b"b\n")))
    assert again.status().added_files() == ["b.txt"]
    second = again.commit("second from labelling")
    assert second.parent_ids == [first.id]

    a.write_bytes(b"a2, changed\n")
    again.add(str(a))
    status = again.status()
    assert status.modified_files() == ["a.txt"]
    assert status.added_files() == []
    third = again.commit("third from labelling")
    assert third.parent_ids == [second.id]

    history = yoke_http.history(repo_id, "main")
    assert [c["id"] for c in history] == [third.id, second.id, first.id, initial]
    assert yoke_http.file(repo_id, "main", "a.txt") == b"a2, changed\n"
    assert yoke_http.file(repo_id, "main", "b.txt") == b"b\n"
    assert yoke_http.file(repo_id, first.id, "a.txt") == b"a1\n"
    assert len(yoke_http.workspaces(repo_id)) == 1

    again.delete()
    assert yoke_http.workspaces(repo_id) == []
    assert remote_repo.list_workspaces() == []
    # The commits stay.
    assert yoke_http.branch_head(repo_id, "main") == third.id


def test_two_named_workspaces_are_separate(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    left = Workspace(remote_repo, "main", workspace_name="left")
    right = Workspace(remote_repo, "main", workspace_name="right")
    assert left.id != right.id
    left.add(str(write_file("l.txt", b"l")))
    assert left.status().added_files() == ["l.txt"]
    assert right.status().added_files() == []
    assert sorted(w["name"] for w in yoke_http.workspaces(repo_id)) == ["left", "right"]
    right.delete()
    assert [w["name"] for w in yoke_http.workspaces(repo_id)] == ["left"]
    left.commit("left only")
    assert yoke_http.file(repo_id, "main", "l.txt") == b"l"


@pytest.mark.parametrize(
    "contents",
    [
        {f"f{i}.txt": f"file {i}\n".encode() for i in range(5)},
        # The client names each multipart part after its file; whatever encoding it uses beyond ASCII (raw UTF-8 or
        # RFC 5987's filename*=), the server's multipart reader must give back the same name.
        {"café ✓.txt": b"accents\n", "日本 語.csv": b"a,b\n1,2\n", "it's & 100%.txt": b"punctuation\n"},
    ],
    ids=["ascii", "non_ascii_names"],
)
def test_add_several_files(remote_repo, yoke_http, write_file, contents):
    repo_id = remote_repo.identifier
    paths = [str(write_file(name, content)) for name, content in contents.items()]
    workspace = Workspace(remote_repo, "main")

    assert workspace.add(paths, "batch") == []
    assert sorted(workspace.status().added_files()) == sorted(f"batch/{n}" for n in contents)
    workspace.commit(f"{len(contents)} files")
    for name, content in contents.items():
        assert yoke_http.file(repo_id, "main", f"batch/{name}") == content
    assert sorted(e.filename for e in remote_repo.ls("batch").entries) == sorted(contents)


def test_add_into_nested_directories(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    workspace = Workspace(remote_repo, "main")
    workspace.add(str(write_file("deep.txt", b"deep\n")), "a/b/c/d")
    workspace.add(str(write_file("shallow.txt", b"shallow\n")), "a")
    assert sorted(workspace.status().added_files()) == ["a/b/c/d/deep.txt", "a/shallow.txt"]
    workspace.commit("nested")

    assert yoke_http.file(repo_id, "main", "a/b/c/d/deep.txt") == b"deep\n"
    assert yoke_http.file(repo_id, "main", "a/shallow.txt") == b"shallow\n"
    assert [e["filename"] for e in yoke_http.dir(repo_id, "main", "a")["entries"]] == ["b", "shallow.txt"]
    assert [e["filename"] for e in yoke_http.dir(repo_id, "main", "a/b/c")["entries"]] == ["d"]


def test_add_a_directory(remote_repo, yoke_http, tmp_path):
    # Workspace.add of a directory sends every file beneath it; 0.65's client stages each one under `dst` by
    # its file name (Workspace.add_files keeps relative paths: see the next test).
    repo_id = remote_repo.identifier
    local = tmp_path / "photos"
    (local / "2024" / "summer").mkdir(parents=True)
    (local / "top.jpg").write_bytes(b"top")
    (local / "2024" / "mid.jpg").write_bytes(b"mid")
    (local / "2024" / "summer" / "low.jpg").write_bytes(b"low")
    workspace = Workspace(remote_repo, "main")

    assert workspace.add(str(local), "album") == []
    assert sorted(workspace.status().added_files()) == ["album/low.jpg", "album/mid.jpg", "album/top.jpg"]
    workspace.commit("album")
    for name in ["top", "mid", "low"]:
        assert yoke_http.file(repo_id, "main", f"album/{name}.jpg") == name.encode()


def test_add_files_keeps_nested_paths(remote_repo, yoke_http, tmp_path):
    repo_id = remote_repo.identifier
    base = tmp_path / "export"
    tree = {
        "images/train/cat/1.png": os.urandom(500),
        "images/train/dog/1.png": os.urandom(600),
        "images/test/1.png": os.urandom(700),
        "meta/labels.csv": b"id,label\n1,cat\n",
        "README.txt": b"top level\n",
    }
    for path, content in tree.items():
        (base / path).parent.mkdir(parents=True, exist_ok=True)
        (base / path).write_bytes(content)
    workspace = Workspace(remote_repo, "main")

    assert workspace.add_files(base, list(tree)) == []
    assert sorted(workspace.status().added_files()) == sorted(tree)
    commit = workspace.commit("export")
    for path, content in tree.items():
        assert yoke_http.file(repo_id, "main", path) == content
    assert [e["filename"] for e in yoke_http.dir(repo_id, "main", "images")["entries"]] == ["test", "train"]
    assert [e["filename"] for e in yoke_http.dir(repo_id, "main", "images/train")["entries"]] == ["cat", "dog"]
    assert yoke_http.json(f"/api/repos/{repo_id}/meta/main/images/train/cat")["entry"]["latest_commit"]["id"] == commit.id


def test_add_a_file_larger_than_10_mib(remote_repo, yoke_http, write_file, tmp_path):
    # Above 10 MiB the client uploads through the version-file routes (versions/uploads and numbered parts) and
    # stages the result in the workspace; small files in the same call go in a multipart batch.
    repo_id = remote_repo.identifier
    big = os.urandom(10 * 1024 * 1024 + 1024 * 1024 + 7)
    big_path = write_file("model.bin", big)
    small_path = write_file("config.json", b'{"layers": 3}\n')
    workspace = Workspace(remote_repo, "main")

    assert workspace.add([str(big_path), str(small_path)], "models/v1") == []
    assert sorted(workspace.status().added_files()) == ["models/v1/config.json", "models/v1/model.bin"]
    commit = workspace.commit("a big model")

    assert yoke_http.branch_head(repo_id, "main") == commit.id
    assert yoke_http.file(repo_id, "main", "models/v1/model.bin") == big
    assert yoke_http.file(repo_id, "main", "models/v1/config.json") == b'{"layers": 3}\n'
    assert remote_repo.metadata("models/v1/model.bin").size == len(big)
    out = tmp_path / "model-copy.bin"
    remote_repo.download("models/v1/model.bin", str(out))
    assert out.read_bytes() == big


def test_add_bytes(remote_repo, yoke_http):
    repo_id = remote_repo.identifier
    workspace = Workspace(remote_repo, "main")
    workspace.add_bytes("generated.txt", b"made in memory\n", "gen/out")
    workspace.add_bytes("root.bin", bytes(range(256)))
    # Only the name of `src` is kept; `dst` says where it goes.
    workspace.add_bytes("ignored/dirs/named.txt", b"named\n", "gen")
    assert sorted(workspace.status().added_files()) == ["gen/named.txt", "gen/out/generated.txt", "root.bin"]
    workspace.commit("bytes")
    assert yoke_http.file(repo_id, "main", "gen/out/generated.txt") == b"made in memory\n"
    assert yoke_http.file(repo_id, "main", "root.bin") == bytes(range(256))
    assert yoke_http.file(repo_id, "main", "gen/named.txt") == b"named\n"


def test_rm_and_unstage(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")
    workspace = Workspace(remote_repo, "main")
    paths = [str(write_file(f"{name}.txt", name)) for name in ["keep", "removed", "unstaged"]]
    workspace.add(paths, "staging")
    assert sorted(workspace.status().added_files()) == ["staging/keep.txt", "staging/removed.txt", "staging/unstaged.txt"]

    workspace.rm("staging/removed.txt")
    assert sorted(workspace.status().added_files()) == ["staging/keep.txt", "staging/unstaged.txt"]
    workspace.unstage("staging/unstaged.txt")
    assert workspace.status().added_files() == ["staging/keep.txt"]

    commit = workspace.commit("only keep")
    assert commit.parent_ids == [head]
    assert yoke_http.file(repo_id, "main", "staging/keep.txt") == b"keep"
    assert yoke_http.file_status(repo_id, "main", "staging/removed.txt") == 404
    assert yoke_http.file_status(repo_id, "main", "staging/unstaged.txt") == 404


def test_unstage_everything_leaves_a_clean_workspace(remote_repo, yoke_http, write_file):
    workspace = Workspace(remote_repo, "main", workspace_name="undo")
    workspace.add(str(write_file("x.txt", b"x")), "d")
    workspace.unstage("d/x.txt")
    status = workspace.status()
    assert status.added_files() == []
    assert status.is_clean()
    assert yoke_http.branch_head(remote_repo.identifier, "main") == workspace.commit_id


def test_status_of_a_directory(remote_repo, write_file):
    workspace = Workspace(remote_repo, "main")
    workspace.add(str(write_file("in.txt", b"in")), "inside")
    workspace.add(str(write_file("out.txt", b"out")), "outside")
    assert sorted(workspace.status().added_files()) == ["inside/in.txt", "outside/out.txt"]
    assert workspace.status("inside").added_files() == ["inside/in.txt"]
    assert workspace.status("outside").added_files() == ["outside/out.txt"]
    assert workspace.status("elsewhere").added_files() == []


def test_delete_a_workspace_discards_what_it_staged(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")
    workspace = Workspace(remote_repo, "main", workspace_name="scratch")
    workspace.add(str(write_file("draft.txt", b"draft")))
    workspace.delete()

    assert yoke_http.workspaces(repo_id) == []
    assert yoke_http.get(f"/api/repos/{repo_id}/workspaces/{workspace.id}").status_code == 404
    assert yoke_http.branch_head(repo_id, "main") == head
    assert yoke_http.file_status(repo_id, "main", "draft.txt") == 404
    # The name can be used again, for a fresh workspace.
    fresh = Workspace(remote_repo, "main", workspace_name="scratch")
    assert fresh.status().added_files() == []


def test_workspace_on_another_branch(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")
    # The client creates the branch when it is missing.
    workspace = Workspace(remote_repo, "experiments")
    assert yoke_http.branches(repo_id) == {"main": head, "experiments": head}
    workspace.add(str(write_file("e.txt", b"e")))
    commit = workspace.commit("experiment")
    assert yoke_http.branches(repo_id) == {"main": head, "experiments": commit.id}


def test_commit_a_workspace_to_a_new_branch(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")
    workspace = Workspace(remote_repo, "main")
    workspace.add(str(write_file("n.txt", b"n")))
    commit = workspace.commit("onto a new branch", branch_name="review")
    assert commit.parent_ids == [head]
    assert yoke_http.branches(repo_id) == {"main": head, "review": commit.id}
    assert yoke_http.file(repo_id, "review", "n.txt") == b"n"
    assert yoke_http.file_status(repo_id, "main", "n.txt") == 404


def test_commit_after_the_branch_moved_on(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    workspace = Workspace(remote_repo, "main")
    workspace.add(str(write_file("w.txt", b"from the workspace")))
    # Meanwhile main moves on, touching another file.
    remote_repo.upload(str(write_file("other.txt", b"other")), "meanwhile")
    moved = yoke_http.branch_head(repo_id, "main")

    commit = workspace.commit("after main moved")
    assert commit.parent_ids == [moved]
    assert yoke_http.branch_head(repo_id, "main") == commit.id
    assert yoke_http.file(repo_id, "main", "w.txt") == b"from the workspace"
    assert yoke_http.file(repo_id, "main", "other.txt") == b"other"


def test_commit_of_a_file_changed_on_the_branch_since_is_refused(remote_repo, yoke_http, write_file):
    repo_id = remote_repo.identifier
    remote_repo.upload(str(write_file("shared.txt", b"v1")), "v1")
    remote_repo.checkout("main")
    workspace = Workspace(remote_repo, "main")
    workspace.add(str(write_file("ws/shared.txt", b"workspace version")))
    remote_repo.upload(str(write_file("shared.txt", b"v2 on main")), "v2")
    moved = yoke_http.branch_head(repo_id, "main")

    with pytest.raises(ValueError, match="409"):
        workspace.commit("would overwrite v2")
    assert yoke_http.branch_head(repo_id, "main") == moved
    assert yoke_http.file(repo_id, "main", "shared.txt") == b"v2 on main"
