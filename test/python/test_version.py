"""The version handshake between Oxen's client and the server."""

import re

import oxen

SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def version_tuple(text: str) -> tuple[int, int, int]:
    match = SEMVER.match(text)
    assert match, f"not a version: {text!r}"
    return tuple(int(part) for part in match.groups())


def test_version_and_min_version_answer_as_oxen_server(yoke_http):
    version = yoke_http.json("/api/version")
    assert version["status"] == "success"
    version_tuple(version["oxen_version"])  # the client reads oxen_version from /api/version

    minimum = yoke_http.json("/api/min_version")
    assert minimum["status"] == "success"
    assert version_tuple(minimum["version"]) == (0, 36, 0)
    # The pinned client must be new enough for the server it is tested against.
    assert version_tuple(minimum["version"]) <= version_tuple(oxen.__version__)


def test_oxen_user_agents_from_the_minimum_up_are_accepted(remote_repo, yoke_http):
    path = f"/api/repos/{remote_repo.identifier}"
    for agent in [
        "Oxen/0.36.0",
        f"Oxen/{oxen.__version__}",
        f"Oxen/{oxen.__version__} (Linux; Python 3.11.7)",  # what the pinned client itself sends
    ]:
        res = yoke_http.get(path, headers={"User-Agent": agent})
        assert res.status_code == 200, f"{agent}: {res.status_code} {res.text[:300]}"
        assert res.json()["status"] == "success"
        branches = yoke_http.get(f"{path}/branches", headers={"User-Agent": agent})
        assert branches.status_code == 200, f"{agent}: {branches.status_code} {branches.text[:300]}"


def test_oxen_clients_older_than_the_minimum_must_update(remote_repo, yoke_http):
    path = f"/api/repos/{remote_repo.identifier}"
    res = yoke_http.get(path, headers={"User-Agent": "Oxen/0.35.9"})
    assert res.status_code == 426, f"{res.status_code} {res.text[:300]}"
    # The version routes stay open, so such a client can learn what it needs.
    assert yoke_http.get("/api/min_version", headers={"User-Agent": "Oxen/0.35.9"}).status_code == 200
    assert yoke_http.get("/api/version", headers={"User-Agent": "Oxen/0.35.9"}).status_code == 200


def test_the_pinned_client_completes_the_handshake(make_remote_repo, yoke_http):
    # RemoteRepo.create checks /api/version and /api/min_version before it creates anything.
    repo = make_remote_repo()
    assert repo.exists()
    assert yoke_http.repo_status(repo.identifier) == 200
