"""Committed data frames read by Oxen's own client (oxenai 0.65.1): its PyRemoteDataFrame (`size`,
`get_row_by_index`, `get_slice`) calls GET /api/repos/{ns}/{repo}/data_frames/{revision}/{path} and parses
Oxen's JsonDataFrameViewResponse. Fixtures are Oxen's own (../shared/testdata/data_frames); every result is
also read over plain HTTP, where the options the client does not send (filter, sort, sql) are checked too."""

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from oxen import Workspace
from oxen.oxen_py import PyRemoteDataFrame

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "data_frames"


def commit_files(remote_repo, write_file, files: dict[str, bytes | str], directory: str = "", branch: str = "main") -> None:
    """Adds files to a branch through a workspace (as Oxen's own tests do)."""
    workspace = Workspace(remote_repo, branch)
    for name, content in files.items():
        assert workspace.add(str(write_file(name, content)), directory) == []
    workspace.commit(f"add {', '.join(files)}")


def http_frame(yoke_http, repo_id: str, revision: str, path: str, expect: int = 200, **params) -> dict:
    return yoke_http.json(f"/api/repos/{repo_id}/data_frames/{quote(revision)}/{quote(path)}", expect=expect, params=params)


@pytest.fixture
def frames_repo(remote_repo, write_file):
    names = ["wiki_1k.parquet", "mixed_data_types.csv", "spam_ham_data_w_quote.tsv", "test.jsonl"]
    commit_files(remote_repo, write_file, {name: (FIXTURES / name).read_bytes() for name in names}, "data")
    return remote_repo


def test_size_rows_and_slices_through_the_client(frames_repo, yoke_http):
    repo_id = frames_repo.identifier
    frame = PyRemoteDataFrame(frames_repo._repo, "data/wiki_1k.parquet")
    assert frame.size() == (3, 1024)  # (width, height), as the client returns it

    row = json.loads(frame.get_row_by_index(330))
    assert [r["title"] for r in row] == ["April 26"]
    sliced = json.loads(frame.get_slice(330, 333, ["id", "title"]))
    assert [r["title"] for r in sliced] == ["April 26", "Anisotropy", "Alpha decay"]
    assert all(set(r) == {"id", "title"} for r in sliced)

    body = http_frame(yoke_http, repo_id, "main", "data/wiki_1k.parquet", slice="330..333", columns="id,title")
    assert body["data_frame"]["view"]["data"] == sliced
    assert body["data_frame"]["source"]["size"] == {"height": 1024, "width": 3}


@pytest.mark.parametrize(
    "path, width, height, first",
    [
        ("data/mixed_data_types.csv", 5, 4, {"prompt": "who is it?", "response": "issa me", "is_correct": True, "response_time": 0.5, "difficulty": 1}),
        ("data/spam_ham_data_w_quote.tsv", 2, 100, {"category": "ham"}),
        ("data/test.jsonl", 3, 2, {"id": 1, "text": "I love it", "category": "positive"}),
    ],
)
def test_every_format_through_the_client(frames_repo, path, width, height, first):
    frame = PyRemoteDataFrame(frames_repo._repo, path)
    assert frame.size() == (width, height)
    row = json.loads(frame.get_row_by_index(0))[0]
    assert {key: row[key] for key in first} == first


def test_a_data_frame_on_another_branch(frames_repo, write_file, yoke_http):
    frames_repo.create_branch("feature/more")
    commit_files(frames_repo, write_file, {"extra.csv": "a,b\n1,x\n2,y\n3,z\n"}, "data", branch="feature/more")
    frames_repo.checkout("feature/more")
    frame = PyRemoteDataFrame(frames_repo._repo, "data/extra.csv")
    assert frame.size() == (2, 3)
    assert json.loads(frame.get_slice(1, 3, []))[0] == {"a": 2, "b": "y"}
    frames_repo.checkout("main")
    with pytest.raises(Exception):
        PyRemoteDataFrame(frames_repo._repo, "data/extra.csv").size()
    http_frame(yoke_http, frames_repo.identifier, "main", "data/extra.csv", expect=404)


def test_refusals_reach_the_client_as_errors(frames_repo, write_file, yoke_http):
    commit_files(frames_repo, write_file, {"notes.txt": "not a table\n"})
    with pytest.raises(Exception):
        PyRemoteDataFrame(frames_repo._repo, "notes.txt").size()
    body = http_frame(yoke_http, frames_repo.identifier, "main", "notes.txt", expect=400)
    assert body["error"]["type"] == "invalid_file_type"
    with pytest.raises(Exception):
        PyRemoteDataFrame(frames_repo._repo, "data/nope.csv").size()


def test_view_options_and_sql_over_http(frames_repo, yoke_http):
    repo_id = frames_repo.identifier
    body = http_frame(yoke_http, repo_id, "main", "data/mixed_data_types.csv", filter="is_correct == true", sort_by="response_time", reverse="true", columns="response")
    assert body["data_frame"]["view"]["data"] == [{"response": "issa me"}, {"response": "nothing"}]
    body = http_frame(yoke_http, repo_id, "main", "data/spam_ham_data_w_quote.tsv", sql="SELECT category, count(*) AS n FROM df GROUP BY category ORDER BY category")
    counts = {r["category"]: r["n"] for r in body["data_frame"]["view"]["data"]}
    assert sum(counts.values()) == 100 and set(counts) == {"ham", "spam"}
    refused = http_frame(yoke_http, repo_id, "main", "data/test.jsonl", expect=400, sql="SELECT * FROM read_csv('/etc/passwd')")
    assert refused["status"] == "error"

    tabular = yoke_http.json(f"/api/repos/{repo_id}/tabular/main")
    assert [e["filename"] for e in tabular["entries"]] == ["data/mixed_data_types.csv", "data/spam_ham_data_w_quote.tsv", "data/test.jsonl", "data/wiki_1k.parquet"]
    schemas = yoke_http.json(f"/api/repos/{repo_id}/schemas/main/data/mixed_data_types.csv")["schemas"]
    assert [(f["name"], f["dtype"]) for f in schemas[0]["fields"]] == [("prompt", "str"), ("response", "str"), ("is_correct", "bool"), ("response_time", "f64"), ("difficulty", "i64")]
