"""Custom outputs: the rules (no server) and tasks that return what a test said."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from wavespeed_mock.contracts import builtin_catalogue
from wavespeed_mock.mock_server.errors import ApiError
from wavespeed_mock.mock_server.features.outputs import OutputBook, SharedOutputBook

from ..._support import checked_live_server, poll_until_ended

Z = "wavespeed-ai/z-image/turbo"
T2V = "character-ai/ovi/text-to-video"


def _png(colour: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, format="PNG")
    return out.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def book(request: pytest.FixtureRequest) -> Iterator[OutputBook]:
    """The rules of one process, and the rules kept in PostgreSQL for every
    process (``SharedOutputBook``): the same behaviour."""
    if request.param == "memory":
        yield OutputBook(builtin_catalogue())
        return
    from wavespeed_mock.mock_server.core.pg_store import PostgresStore

    store = PostgresStore(request.getfixturevalue("database"))
    try:
        yield SharedOutputBook(builtin_catalogue(), store)
    finally:
        store.close()


def test_the_newest_matching_rule_wins_and_times_run_out(book: OutputBook) -> None:
    book.add({"model": Z, "outputs": [{"url": "https://cdn.example/any.png"}]})
    book.add(
        {
            "model": Z,
            "match": {"prompt": "a cat"},
            "outputs": [{"base64": _b64(_png()), "format": "png"}],
            "times": 1,
        }
    )
    assert [r["times_left"] for r in book.state()] == [None, 1]
    cat = book.choose(Z, {"prompt": "a cat", "seed": 3})
    assert cat is not None and cat.files == ((_png(), "png"),)
    # The counted rule is spent; the catch-all answers.
    again = book.choose(Z, {"prompt": "a cat"})
    assert again is not None and again.urls == ("https://cdn.example/any.png",)
    assert book.choose(T2V, {"prompt": "a cat"}) is None  # another model
    assert [r["outputs"] for r in book.state()] == [
        [{"url": "https://cdn.example/any.png"}]
    ]
    book.reset()
    assert book.choose(Z, {"prompt": "x"}) is None
    assert book.state() == []


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({"model": "nobody/none", "outputs": [{"url": "https://x/y"}]}, "$.model"),
        (
            {
                "model": Z,
                "outputs": [
                    {"base64": _b64(b"\x00\x00\x00\x18ftypisom"), "format": "mp4"}
                ],
            },
            "not a image format",
        ),
        (
            {"model": Z, "outputs": [{"base64": _b64(b"not a png"), "format": "png"}]},
            "not a PNG",
        ),
        (
            {"model": Z, "outputs": [{"base64": "***", "format": "png"}]},
            "not valid base64",
        ),
        (
            {
                "model": Z,
                "outputs": [
                    {"url": "https://x/y"},
                    {"base64": _b64(_png()), "format": "png"},
                ],
            },
            "not both",
        ),
    ],
)
def test_a_rule_that_cannot_hold_is_refused_naming_the_field(
    rule: dict[str, Any], words: str
) -> None:
    with pytest.raises(ApiError, match=words.replace("$", r"\$")):
        OutputBook(builtin_catalogue()).add(rule)


def test_tasks_return_the_files_and_urls_a_test_chose(tmp_path: Path) -> None:
    red, blue = _png((255, 0, 0)), _png((0, 0, 255))
    with (
        checked_live_server(tmp_path) as live,
        httpx.Client(
            base_url=live.url, headers={"Authorization": "Bearer k"}
        ) as client,
    ):
        answer = client.post(
            "/_mock/outputs",
            json={
                "model": Z,
                "match": {"prompt": "two"},
                "outputs": [
                    {"base64": _b64(red), "format": "png"},
                    {"base64": _b64(blue), "format": "png"},
                ],
            },
        )
        assert answer.status_code == 200, answer.text
        client.post(
            "/_mock/outputs",
            json={
                "model": T2V,
                "outputs": [{"url": "https://cdn.example/clip.mp4"}],
                "times": 1,
            },
        )
        # Two files, served as the task's outputs.
        pid = client.post(f"/api/v3/{Z}", json={"prompt": "two"}).json()["data"]["id"]
        done = poll_until_ended(client, pid)
        assert done["status"] == "completed" and len(done["outputs"]) == 2
        assert [httpx.get(u).content for u in done["outputs"]] == [red, blue]
        assert done["outputs"][0].endswith(".png")
        # Another body: the synthetic output, as usual.
        other = poll_until_ended(
            client,
            client.post(f"/api/v3/{Z}", json={"prompt": "one"}).json()["data"]["id"],
        )
        assert len(other["outputs"]) == 1 and httpx.get(
            other["outputs"][0]
        ).content not in (red, blue)
        # A URL handed out as it is, once.
        clip = poll_until_ended(
            client,
            client.post(f"/api/v3/{T2V}", json={"prompt": "p"}).json()["data"]["id"],
        )
        assert clip["outputs"] == ["https://cdn.example/clip.mp4"]
        again = poll_until_ended(
            client,
            client.post(f"/api/v3/{T2V}", json={"prompt": "p"}).json()["data"]["id"],
        )
        assert again["outputs"][0].startswith(live.url)
        # Listed, then cleared by a reset.
        assert len(client.get("/_mock/outputs").json()["data"]["rules"]) == 1
        client.post("/_mock/reset")
        assert client.get("/_mock/outputs").json()["data"]["rules"] == []


def test_the_fixture_helper_takes_paths_bytes_and_urls(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import httpx
        from PIL import Image

        def test_app_post_processing(wavespeed_server, wavespeed_client, tmp_path):
            picture = tmp_path / "cat.png"
            Image.new("RGB", (64, 48), (10, 200, 30)).save(picture)
            wavespeed_server.returns("wavespeed-ai/z-image/turbo", picture)
            out = wavespeed_client.run("wavespeed-ai/z-image/turbo", {"prompt": "any"})
            assert httpx.get(out["outputs"][0]).content == picture.read_bytes()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
