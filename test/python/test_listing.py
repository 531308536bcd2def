"""RemoteRepo.ls (pagination) and RemoteRepo.scan, against GET …/dir/{rev}/{path}."""

import time

import pytest
from oxen import Workspace

# Oxen lists a directory's subdirectories first, then its files, each group by name.
FILES = {
    "listing/b.txt": b"b",
    "listing/a.txt": b"aa",
    "listing/d.csv": b"x,y\n",
    "listing/c.bin": b"\x00\x01\x02",
    "listing/E.txt": b"upper case sorts before lower",
    "listing/zdir/inner.txt": b"inner",
    "listing/adir/deeper/leaf.txt": b"leaf",
}
EXPECTED_ORDER = ["adir", "zdir", "E.txt", "a.txt", "b.txt", "c.bin", "d.csv"]


@pytest.fixture
def listed_repo(remote_repo, tmp_path):
    base = tmp_path / "tree"
    for path, content in FILES.items():
        (base / path).parent.mkdir(parents=True, exist_ok=True)
        (base / path).write_bytes(content)
    workspace = Workspace(remote_repo, "main")
    workspace.add_files(base, [base / p for p in FILES])
    workspace.commit("tree to list")
    return remote_repo


def test_ls_root(remote_repo, yoke_http):
    page = remote_repo.ls()
    assert [e.filename for e in page.entries] == ["README.md"]
    assert (page.page_number, page.total_entries, page.total_pages) == (1, 1, 1)
    http = yoke_http.dir(remote_repo.identifier, "main")
    assert [e["filename"] for e in http["entries"]] == ["README.md"]


def test_ls_a_directory_in_order(listed_repo, yoke_http):
    repo_id = listed_repo.identifier
    head = yoke_http.branch_head(repo_id, "main")
    page = listed_repo.ls("listing")
    assert [e.filename for e in page.entries] == EXPECTED_ORDER
    assert (page.page_number, page.page_size, page.total_entries, page.total_pages) == (1, 100, 7, 1)
    by_name = {e.filename: e for e in page.entries}
    assert by_name["adir"].is_dir and by_name["zdir"].is_dir
    assert not by_name["a.txt"].is_dir
    assert by_name["a.txt"].size == 2
    assert by_name["d.csv"].size == 4

    http = yoke_http.dir(repo_id, "main", "listing")
    assert [e["filename"] for e in http["entries"]] == EXPECTED_ORDER
    assert http["total_entries"] == 7
    for entry in http["entries"]:
        assert entry["latest_commit"]["id"] == head, entry
        assert entry["hash"] == by_name[entry["filename"]].hash
    # A deeper directory.
    assert [e.filename for e in listed_repo.ls("listing/adir/deeper").entries] == ["leaf.txt"]


def test_ls_pages(listed_repo, yoke_http):
    repo_id = listed_repo.identifier
    seen = []
    for number in range(1, 5):
        page = listed_repo.ls("listing", page_num=number, page_size=2)
        assert page.page_number == number
        assert page.page_size == 2
        assert page.total_entries == 7
        assert page.total_pages == 4
        seen.extend(e.filename for e in page.entries)
        http = yoke_http.dir(repo_id, "main", "listing", page=number, page_size=2)
        assert [e["filename"] for e in http["entries"]] == [e.filename for e in page.entries]
        assert (http["page_number"], http["page_size"], http["total_pages"]) == (number, 2, 4)
    assert seen == EXPECTED_ORDER
    # Past the last page: nothing.
    assert list(listed_repo.ls("listing", page_num=5, page_size=2).entries) == []


def test_scan_walks_every_page(listed_repo):
    scanned = list(listed_repo.scan("listing", page_size=3))
    assert [e.filename for e in scanned] == EXPECTED_ORDER
    assert [e.filename for e in listed_repo.scan(page_size=1)] == ["listing", "README.md"]


def test_ls_at_another_revision_and_of_a_missing_directory(listed_repo, yoke_http):
    repo_id = listed_repo.identifier
    initial = yoke_http.history(repo_id, "main")[-1]["id"]
    listed_repo.checkout(initial)
    assert [e.filename for e in listed_repo.ls().entries] == ["README.md"]
    listed_repo.checkout("main")
    assert [e.filename for e in listed_repo.ls().entries] == ["listing", "README.md"]
    with pytest.raises(ValueError, match="404"):
        listed_repo.ls("no/such/dir")
    assert yoke_http.get(f"/api/repos/{repo_id}/dir/main/no/such/dir").status_code == 404


def test_ls_by_date_with_each_entry_dated_by_its_last_commit(remote_repo, yoke_http, write_file):
    # RemoteRepo.ls passes no sort options; the client's binding underneath (PyRemoteRepo.ls) takes sort_by,
    # reverse and depth, and sends them as query parameters.
    repo_id = remote_repo.identifier
    commits = {}

    def commit(message, name, content, dst_dir):
        time.sleep(0.01)  # distinct commit timestamps
        remote_repo.upload(str(write_file(f"{message}/{name}", content)), message, file_name=name, dst_dir=dst_dir)
        commits[message] = yoke_http.branch_head(repo_id, "main")

    commit("c1", "f1.txt", b"1", "dated")
    commit("c2", "x.txt", b"x", "dated/d1")
    commit("c3", "f2.txt", b"2", "dated")
    commit("c4", "y.txt", b"y", "dated/d2")
    commit("c5", "f3.txt", b"3", "dated")
    commit("c6", "f1.txt", b"1 again", "dated")
    commit("c7", "x.txt", b"x again", "dated/d1")

    by_name = [e.filename for e in remote_repo.ls("dated").entries]
    assert by_name == ["d1", "d2", "f1.txt", "f2.txt", "f3.txt"]
    by_date = remote_repo._repo.ls("dated", page_num=1, page_size=100, sort_by="date")
    assert [e.filename for e in by_date.entries] == ["d2", "d1", "f2.txt", "f3.txt", "f1.txt"]
    newest_first = remote_repo._repo.ls("dated", page_num=1, page_size=100, sort_by="date", reverse=True)
    assert [e.filename for e in newest_first.entries] == ["d1", "d2", "f1.txt", "f3.txt", "f2.txt"]

    http = yoke_http.dir(repo_id, "main", "dated", sort_by="date")
    assert [e["filename"] for e in http["entries"]] == ["d2", "d1", "f2.txt", "f3.txt", "f1.txt"]
    dated = {e["filename"]: e["latest_commit"]["id"] for e in http["entries"]}
    assert dated == {"d1": commits["c7"], "d2": commits["c4"], "f1.txt": commits["c6"], "f2.txt": commits["c3"], "f3.txt": commits["c5"]}
    # The directory itself is dated by its newest change.
    assert yoke_http.json(f"/api/repos/{repo_id}/meta/main/dated")["entry"]["latest_commit"]["id"] == commits["c7"]

    # depth=1 lists each subdirectory's own entries beneath it.
    deep = yoke_http.dir(repo_id, "main", "dated", depth=1)
    children = {e["filename"]: [c["filename"] for c in e.get("children") or []] for e in deep["entries"] if e["is_dir"]}
    assert children == {"d1": ["x.txt"], "d2": ["y.txt"]}
    assert [e["filename"] for e in deep["entries"]] == by_name
