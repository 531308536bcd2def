"""Tabular diffs read by Oxen's own client (oxenai 0.65.1).

The client's one call that reaches a data-frame comparison is RemoteRepo.diff: PyRemoteRepo.diff_file sends
GET /api/repos/{ns}/{repo}/compare/file/{base}..{head}/{path} and parses Oxen's DiffEntry, whose `diff` is an
untagged union (a directory's, a TabularDiffView or a TextDiff): the entry's `format` says which one the reply
parsed as, and RemoteRepo.diff returns a text diff and raises NotImplementedError for a tabular one. The cases
are those of Oxen's own client tests (api/client/diff.rs, test_diff_entries_modify_*_csv, on their fixture
llm_fine_tune.csv), whose counts are checked over plain HTTP.

The client has no call for compare/data_frames (Oxen's Rust create_compare, update_compare and
get_derived_compare_df are not exposed in Python), so a comparison of the same files is checked over HTTP.
"""

from pathlib import Path

import pytest
from oxen import Workspace

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "data_frames"
ORIGINAL = (FIXTURES / "llm_fine_tune.csv").read_text()
HEADER = "instruction,context,response,category\n"

ADD_ROWS = (
    ORIGINAL
    + "answer the question,what is the color of the sky?,blue,trivia\n"
    + "answer the question,what is the color of the ocean?,blue-ish green sometimes,trivia\n"
)
ADD_AND_REMOVE_ROWS = (
    HEADER
    + "answer the question,what is the capital of france?,paris,geography\n"
    + "answer the question,who was the 44th president of the united states?,barack obama,politics\n"
    + "who won the game,,I don't know what game you are referring to,sports\n"
    + "who won the game?,The packers beat up on the bears,packers,sports\n"
    + "define the word,what does the word 'the' mean?,it is a stopword.,language\n"
)
REMOVE_COLUMN = "\n".join(line.rsplit(",", 1)[0] for line in ORIGINAL.splitlines()) + "\n"


def commit(remote_repo, write_file, branch: str, files: dict[str, str], tag: str) -> None:
    workspace = Workspace(remote_repo, branch)
    for name, content in files.items():
        assert workspace.add(str(write_file(f"{tag}/{name}", content)), "") == []
    workspace.commit(f"{tag}: {', '.join(files)}")


@pytest.fixture
def edited(remote_repo, write_file):
    """main holds Oxen's fixture; each branch edits it as one of Oxen's tests does."""
    commit(remote_repo, write_file, "main", {"llm_fine_tune.csv": ORIGINAL, "notes.txt": "one\ntwo\n"}, "base")
    for branch, content in [("add-rows", ADD_ROWS), ("add-and-remove-rows", ADD_AND_REMOVE_ROWS), ("remove-column", REMOVE_COLUMN)]:
        remote_repo.create_branch(branch)
        commit(remote_repo, write_file, branch, {"llm_fine_tune.csv": content, "notes.txt": "one\nthree\n"}, branch)
    return remote_repo


@pytest.mark.parametrize(
    "branch, summary",
    [
        ("add-rows", {"num_added_rows": 2, "num_added_cols": 0, "num_removed_rows": 0, "num_removed_cols": 0, "schema_has_changed": False}),
        ("add-and-remove-rows", {"num_added_rows": 1, "num_added_cols": 0, "num_removed_rows": 2, "num_removed_cols": 0, "schema_has_changed": False}),
        ("remove-column", {"num_added_rows": 0, "num_added_cols": 0, "num_removed_rows": 0, "num_removed_cols": 1, "schema_has_changed": True}),
    ],
)
def test_the_client_reads_a_tabular_diff(edited, yoke_http, branch, summary):
    entry = edited._repo.diff_file("main", branch, "llm_fine_tune.csv")
    assert entry.format == "tabular"
    with pytest.raises(NotImplementedError, match="Only text diffs"):
        edited.diff("main", branch, "llm_fine_tune.csv")

    compare = yoke_http.json(f"/api/repos/{edited.identifier}/compare/file/main..{branch}/llm_fine_tune.csv")["compare"]
    assert compare["status"] == "modified"
    assert compare["diff_summary"] == {"tabular": summary}
    tabular = compare["diff"]["tabular"]
    assert tabular["summary"] == summary
    if branch == "add-rows":
        # In the order of the columns compared (here every column): the ocean before the sky.
        assert [row["response"] for row in tabular["added_rows"]["data"]] == ["blue-ish green sometimes", "blue"]
        assert tabular["removed_rows"]["full_size"] == {"height": 0, "width": 4}
    if branch == "add-and-remove-rows":
        assert tabular["added_rows"]["view_size"]["height"] == 1
        assert tabular["removed_rows"]["view_size"]["height"] == 2
        assert tabular["added_cols"] is None and tabular["removed_cols"] is None
    if branch == "remove-column":
        assert tabular["removed_cols"]["view_size"] == {"height": 6, "width": 1}
        assert tabular["removed_cols_view"]["data"][0] == {"category": "geography"}


def test_text_diffs_still_reach_the_client_as_text(edited):
    diff = edited.diff("main", "add-rows", "notes.txt")
    assert [(str(line.modification), line.text) for line in diff.lines] == [
        ("PyChangeType.Unchanged", "one"),
        ("PyChangeType.Removed", "two"),
        ("PyChangeType.Added", "three"),
    ]


def test_a_comparison_of_the_same_files_over_http(edited, yoke_http):
    """Keys that repeat (instruction) are paired occurrence by occurrence, in the order of the compared column."""
    base = f"/api/repos/{edited.identifier}/compare/data_frames"
    body = {
        "compare_id": "llm",
        "left": {"path": "llm_fine_tune.csv", "version": "main"},
        "right": {"path": "llm_fine_tune.csv", "version": "add-and-remove-rows"},
        "keys": [{"left": "instruction", "right": "instruction", "alias_as": None, "compare_method": None}],
        "compare": [{"left": "response", "right": "response", "compare_method": None}],
        "display": [],
    }
    res = yoke_http.request("POST", base, json=body)
    assert res.status_code == 200, res.text[:500]
    created = res.json()
    assert created["dfs"]["summary"]["modifications"] == {"added_rows": 1, "removed_rows": 2, "modified_rows": 0}
    assert created["dfs"]["dupes"] == {"left": 4, "right": 2}
    assert created["messages"][0]["title"] == "Duplicate keys"
    derived = yoke_http.json(f"{base}/llm/diff/main..main")["data_frame"]["view"]
    assert [(row["instruction"], row["_oxen_diff_status"]) for row in derived["data"]] == [
        ("define the word", "added"),
        ("turn xml to json", "removed"),
        ("who won the game", "removed"),
    ]
    assert yoke_http.json(f"{base}/llm") == created
    assert yoke_http.request("DELETE", f"{base}/llm").status_code == 200
    yoke_http.json(f"{base}/llm", expect=404)
