"""oxen.DataFrame on a workspace (the workspaces/{id}/data_frames routes): indexing, pages and size, rows added,
read, updated and deleted, a frame created by its first row, columns, SQL, embeddings and nearest neighbours,
restore, refusals, and commits that write the edited file back. Each result is also read over plain HTTP."""

import csv
import io
import json
from urllib.parse import quote

import polars as pl
import pytest
from oxen import DataFrame, Workspace

PEOPLE = "name,hair_color\nann,black\nbob,blond\ncid,red\n"
QUESTIONS = [
    {"id": "1", "title": "A", "question": "best data version control?", "embedding": [0.1, 0.2, 0.3]},
    {"id": "2", "title": "B", "question": "a replacement for git-lfs?", "embedding": [0.2, 0.3, 0.4]},
    {"id": "3", "title": "C", "question": "how to version data?", "embedding": [0.3, 0.4, 0.5]},
    {"id": "4", "title": "D", "question": "something else", "embedding": [-0.3, 0.1, -0.5]},
]


def commit_files(remote_repo, write_file, files: dict[str, bytes | str], directory: str = "") -> None:
    """Adds files to `main` through a workspace (as Oxen's own tests do)."""
    workspace = Workspace(remote_repo, "main")
    for name, content in files.items():
        assert workspace.add(str(write_file(name, content)), directory) == []
    workspace.commit(f"add {', '.join(files)}")


def frame_page(yoke_http, repo_id: str, workspace_id: str, path: str, **params) -> dict:
    """GET …/workspaces/{id}/data_frames/resource/{path} over plain HTTP."""
    return yoke_http.json(f"/api/repos/{repo_id}/workspaces/{workspace_id}/data_frames/resource/{quote(path)}", params=params)


def changes(yoke_http, repo_id: str, workspace_id: str) -> list[tuple[str, str]]:
    body = yoke_http.json(f"/api/repos/{repo_id}/workspaces/{workspace_id}/changes")
    return [(c["status"], c["path"]) for c in body["changes"]]


@pytest.fixture
def people_repo(remote_repo, write_file):
    commit_files(remote_repo, write_file, {"train.csv": PEOPLE}, "annotations")
    return remote_repo


@pytest.fixture
def questions_repo(remote_repo, write_file, tmp_path):
    parquet = tmp_path / "questions.parquet"
    pl.DataFrame(QUESTIONS).write_parquet(parquet)
    jsonl = "".join(json.dumps(q) + "\n" for q in QUESTIONS)
    commit_files(remote_repo, write_file, {"questions.parquet": parquet.read_bytes(), "questions.jsonl": jsonl})
    return remote_repo


def test_rows_added_read_updated_deleted(people_repo, yoke_http):
    repo_id = people_repo.identifier
    df = DataFrame(people_repo, "annotations/train.csv")
    workspace_id = df._workspace.id
    assert frame_page(yoke_http, repo_id, workspace_id, "annotations/train.csv")["is_indexed"] is True
    width, height = df.size()
    assert height == 3
    assert [r["name"] for r in df.list_page(1)] == ["ann", "bob", "cid"]
    assert all(r["_oxen_id"] for r in df.list_page(1))

    row_id = df.insert_row({"name": "dan", "hair_color": "purple"})
    assert df.size()[1] == 4
    assert changes(yoke_http, repo_id, workspace_id) == [("modified", "annotations/train.csv")]

    updated = df.update_row(row_id, {"hair_color": "blue"})
    assert updated[0]["hair_color"] == "blue"
    assert df.get_row_by_id(row_id)["hair_color"] == "blue"
    row = yoke_http.json(f"/api/repos/{repo_id}/workspaces/{workspace_id}/data_frames/rows/{row_id}/resource/annotations/train.csv")
    assert row["data_frame"]["view"]["data"] == [{"name": "dan", "hair_color": "blue", "_oxen_id": row_id}]
    assert df.get_row(3)[0]["name"] == "dan"

    df.delete_row(row_id)
    assert df.size()[1] == 3
    assert frame_page(yoke_http, repo_id, workspace_id, "annotations/train.csv")["data_frame"]["view"]["pagination"]["total_entries"] == 3


def test_first_row_creates_the_frame_on_a_branch(remote_repo, yoke_http):
    repo_id = remote_repo.identifier
    remote_repo.create_checkout_branch("prompts")
    df = DataFrame(remote_repo, "logs/prompts.jsonl")
    first = {"prompt": "best data version control?", "response": "Oxen"}
    second = {"prompt": "fastest?", "response": "Oxen, again"}
    row_id = df.insert_row(first)
    assert df.size()[1] == 1
    assert df.get_row_by_id(row_id)["prompt"] == first["prompt"]
    df.insert_row(second)
    assert [(r["prompt"], r["response"]) for r in df.list_page(1)] == [tuple(first.values()), tuple(second.values())]

    df.commit("two prompts", "prompts")
    lines = yoke_http.file(repo_id, "prompts", "logs/prompts.jsonl").decode().splitlines()
    assert [json.loads(line) for line in lines] == [first, second]
    assert yoke_http.file_status(repo_id, "main", "logs/prompts.jsonl") == 404


def test_columns_added(people_repo, yoke_http):
    df = DataFrame(people_repo, "annotations/train.csv")
    assert [c.name for c in df.get_columns()] == ["name", "hair_color", "_oxen_id"]
    df.add_column("note", "str")
    columns = {c.name: c.dtype for c in df.get_columns()}
    assert columns == {"name": "str", "hair_color": "str", "note": "str", "_oxen_id": "str"}
    schema = yoke_http.json(f"/api/repos/{people_repo.identifier}/workspaces/{df._workspace.id}/data_frames/schema/annotations/train.csv")
    assert [f["name"] for f in schema["fields"]] == ["name", "hair_color", "note"]


def test_commit_writes_the_edited_csv(people_repo, yoke_http, tmp_path):
    repo_id = people_repo.identifier
    workspace = Workspace(people_repo, "main", workspace_name="labelling")
    df = DataFrame(workspace, "annotations/train.csv")
    history = yoke_http.history(repo_id, "main")
    df.insert_row({"name": "dan", "hair_color": "purple"})
    bob = df.list_page(1)[1]["_oxen_id"]
    df.update_row(bob, {"hair_color": "grey, mostly"})
    workspace.commit("edit train.csv")

    assert len(yoke_http.history(repo_id, "main")) == len(history) + 1
    committed = yoke_http.file(repo_id, "main", "annotations/train.csv").decode()
    assert list(csv.reader(io.StringIO(committed))) == [
        ["name", "hair_color"], ["ann", "black"], ["bob", "grey, mostly"], ["cid", "red"], ["dan", "purple"]
    ]
    # The client downloads what was committed; the named workspace carries on with no changes left.
    local = tmp_path / "train.csv"
    people_repo.download("annotations/train.csv", str(local))
    assert local.read_text() == committed
    assert changes(yoke_http, repo_id, workspace.id) == []


def test_row_of_unknown_columns_is_refused(people_repo, yoke_http):
    workspace = Workspace(people_repo, "main", workspace_name="refusals")
    df = DataFrame(workspace, "annotations/train.csv")
    with pytest.raises(ValueError):
        df.insert_row({"gahfile": "x.png", "hair_color": "purple"})
    assert df.size()[1] == 3
    assert changes(yoke_http, people_repo.identifier, workspace.id) == []


def test_restore_drops_the_edits(people_repo, yoke_http):
    df = DataFrame(people_repo, "annotations/train.csv")
    df.insert_row({"name": "dan", "hair_color": "purple"})
    assert df.size()[1] == 4
    df.restore()
    assert df.size()[1] == 3
    assert changes(yoke_http, people_repo.identifier, df._workspace.id) == []


def test_sql(questions_repo, yoke_http):
    df = DataFrame(Workspace(questions_repo, "main"), "questions.parquet")
    sql = df.select_sql_from_dict({"id": "3", "title": "C"})
    assert sql == "SELECT * FROM df WHERE id = '3' AND title = 'C'"
    [row] = df.query(sql=sql)
    assert (row["id"], row["title"]) == ("3", "C")
    assert [r["title"] for r in df.get_by({"id": "2"})] == ["B"]
    grouped = df.query(sql="SELECT count(*) AS n FROM df WHERE title <> 'D'")
    assert grouped == [{"n": 3}]
    with pytest.raises(ValueError):
        df.query(sql="SELECT * FROM read_csv('/etc/passwd')")


def test_embeddings_and_nearest_neighbours(questions_repo, yoke_http):
    repo_id = questions_repo.identifier
    for path in ["questions.jsonl", "questions.parquet"]:
        df = DataFrame(Workspace(questions_repo, "main"), path)
        assert df.get_embeddings({"id": "2"}) == [[0.2, 0.3, 0.4]]
        assert not df.is_nearest_neighbors_enabled("embedding")
        df.enable_nearest_neighbors("embedding")
        assert df.is_nearest_neighbors_enabled("embedding")
        columns = yoke_http.json(f"/api/repos/{repo_id}/workspaces/{df._workspace.id}/data_frames/embeddings/columns/{path}")["columns"]
        assert columns == [{"name": "embedding", "vector_length": 3, "status": "complete"}]

        nearest = df.query(embedding=[0.3, 0.4, 0.5], sort_by_similarity_to="embedding", page_size=2)
        assert [r["id"] for r in nearest] == ["3", "2"]
        assert nearest[0]["embedding"] == [0.3, 0.4, 0.5]
        # Sorted by similarity to the mean vector of the rows the WHERE clause selects (here B alone): D is least like it.
        found = df.query(find_embedding_where={"title": "B"}, sort_by_similarity_to="embedding", page_size=4)
        assert found[0]["id"] == "2"
        assert [r["id"] for r in found][-1] == "4"
