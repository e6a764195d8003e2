"""The submission pipeline, driven directly: what a cancelled submit leaves behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

from wavespeed_mock.contracts import get_model
from wavespeed_mock.mock_server import Settings, SubmitRequest, build_server
from wavespeed_mock.mock_server.core.store import PredictionStore

from .._fakes import FakeEngine, fake_engine


def test_a_submit_cancelled_while_its_row_commits_is_still_rendered(
    tmp_path: Path,
) -> None:
    server = build_server(
        Settings(data_dir=tmp_path, profile="instant"), engine=FakeEngine()
    )
    service = server.service
    request = SubmitRequest(
        model=get_model("character-ai/ovi/text-to-video"),
        body={"prompt": "waves", "seed": 3},
        api_key="k",
    )

    async def cancel_during_commit() -> None:
        service.start()
        task = asyncio.ensure_future(service.submit(request))
        while not service.store._waiting:  # the submit now waits for its commit
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        [p] = service.store.all()
        assert await service.renders.wait(p, 30)  # it was rendered all the same
        await service.aclose()

    asyncio.run(cancel_during_commit())
    assert len(fake_engine(server).jobs) == 1
    reopened = PredictionStore(tmp_path.resolve() / "state.sqlite3")
    assert len(reopened) == 1  # and its row committed
    reopened.close()


def test_a_real_engine_runs_its_own_models_and_the_synthetic_one_the_rest(
    tmp_path: Path,
) -> None:
    class OviLike(FakeEngine):
        name = "ovi"  # the family Ovi's catalogue entries name (x-mock.engine_model)

    engine = OviLike()
    server = build_server(Settings(data_dir=tmp_path, profile="instant"), engine=engine)
    service = server.service
    assert service.renders.fallback is not None
    assert service.renders.fallback.name == "synthetic"

    async def go() -> None:
        service.start(asyncio.get_running_loop())
        try:
            for model, body in (
                ("character-ai/ovi/text-to-video", {"prompt": "waves"}),
                ("wavespeed-ai/z-image/turbo", {"prompt": "a fox", "size": "64*64"}),
            ):
                await service.submit(
                    SubmitRequest(model=get_model(model), body=body, api_key="k")
                )
            await service.settle()
        finally:
            await service.aclose()

    asyncio.run(go())
    assert [job.model for job in engine.jobs] == ["character-ai/ovi/text-to-video"]
    image = next(p for p in service.predictions() if p.model.startswith("wavespeed-ai"))
    folder, name = service.output_file(image.id)
    assert (folder / name).read_bytes()[:2] == b"\xff\xd8"  # a JPEG, made synthetically
