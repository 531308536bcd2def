"""RemoteRepo.download: a file (small, and larger than the client's 10 MiB segment), a nested directory."""

import os
from pathlib import Path

from oxen import Workspace


def test_download_a_file(remote_repo, yoke_http, write_file, tmp_path, monkeypatch):
    content = os.urandom(100_000)
    remote_repo.upload(str(write_file("sample.bin", content)), "sample", dst_dir="deep/er")
    assert yoke_http.file(remote_repo.identifier, "main", "deep/er/sample.bin") == content

    out = tmp_path / "out"
    out.mkdir()
    remote_repo.download("deep/er/sample.bin", str(out / "copy.bin"))
    assert (out / "copy.bin").read_bytes() == content

    # Into an existing directory: the file keeps its name.
    remote_repo.download("deep/er/sample.bin", str(out))
    assert (out / "sample.bin").read_bytes() == content

    # Without a destination: the same relative path under the working directory.
    monkeypatch.chdir(out)
    remote_repo.download("deep/er/sample.bin")
    assert (out / "deep" / "er" / "sample.bin").read_bytes() == content

    # At an older revision.
    initial = yoke_http.history(remote_repo.identifier, "main")[-1]["id"]
    remote_repo.download("README.md", str(out / "readme-then.md"), revision=initial)
    assert (out / "readme-then.md").read_bytes() == yoke_http.file(remote_repo.identifier, initial, "README.md")


def test_download_a_file_larger_than_one_segment(remote_repo, yoke_http, write_file, tmp_path):
    # Above 10 MiB the client fetches the file in ranges (GET …/chunk/{rev}/{path}) and joins them.
    content = os.urandom(10 * 1024 * 1024 + 300_000)
    remote_repo.upload(str(write_file("big.bin", content)), "big", dst_dir="weights")
    assert yoke_http.file(remote_repo.identifier, "main", "weights/big.bin") == content

    out = tmp_path / "big-copy.bin"
    remote_repo.download("weights/big.bin", str(out))
    assert out.read_bytes() == content


def local_files(root: Path) -> dict[str, bytes]:
    """Every file under root (the client's own `.oxen` bookkeeping left out), by relative path."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".oxen"]
        for name in filenames:
            path = Path(dirpath) / name
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def test_download_a_nested_directory(remote_repo, yoke_http, write_file, tmp_path):
    repo_id = remote_repo.identifier
    tree = {
        "dataset/labels.csv": b"file,label\n1.jpg,cat\n",
        "dataset/train/cats/1.jpg": os.urandom(3000),
        "dataset/train/cats/2.jpg": os.urandom(2000),
        "dataset/train/dogs/1.jpg": os.urandom(1000),
        "dataset/test/deep/er/x.txt": b"x\n",
        "elsewhere.txt": b"not part of the download\n",
    }
    base = tmp_path / "src"
    for path, content in tree.items():
        (base / path).parent.mkdir(parents=True, exist_ok=True)
        (base / path).write_bytes(content)
    workspace = Workspace(remote_repo, "main")
    workspace.add_files(base, [base / p for p in tree])
    workspace.commit("dataset")
    # A second commit that touches one subdirectory only, so the directory's parts date from different commits.
    tree["dataset/train/dogs/2.jpg"] = os.urandom(1500)
    remote_repo.upload(str(write_file("2.jpg", tree["dataset/train/dogs/2.jpg"])), "one more dog", dst_dir="dataset/train/dogs")
    for path, content in tree.items():
        assert yoke_http.file(repo_id, "main", path) == content

    wanted = {p: c for p, c in tree.items() if p.startswith("dataset/")}

    out = tmp_path / "out"
    out.mkdir()
    remote_repo.download("dataset", str(out))
    assert local_files(out) == wanted

    # A subdirectory lands under its own path, as for Oxen's CLI.
    sub = tmp_path / "sub"
    sub.mkdir()
    remote_repo.download("dataset/train", str(sub))
    assert local_files(sub) == {p: c for p, c in wanted.items() if p.startswith("dataset/train/")}

    # At the first commit the directory did not have the second dog.
    first = yoke_http.history(repo_id, "main")[1]["id"]
    then = tmp_path / "then"
    then.mkdir()
    remote_repo.download("dataset", str(then), revision=first)
    assert local_files(then) == {p: c for p, c in wanted.items() if p != "dataset/train/dogs/2.jpg"}
