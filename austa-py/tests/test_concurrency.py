"""The interpreter lock is released during database work, and the asyncio flavour."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import List

import austa
from conftest import MASTER_KEY, new_org, patient_row


def test_database_work_runs_without_the_interpreter_lock(scope: austa.Scope) -> None:
    ana = scope.patients.create(patient_row())
    rows = [
        {"patient_id": str(ana.id), "data_type": "LAB_RESULT", "category": "GENERAL", "lab_results": {"n": i}}
        for i in range(3000)
    ]
    text = json.dumps({"rows": rows, "count_only": True})
    native = scope._native
    started, finished = threading.Event(), threading.Event()
    span: List[float] = []

    def bulk() -> None:
        started.set()
        t0 = time.perf_counter()
        try:
            native.call("health_data.create_many", text)  # one native call, no Python code inside
        finally:
            span.extend([t0, time.perf_counter()])
            finished.set()

    worker = threading.Thread(target=bulk)
    ticks: List[float] = []
    worker.start()
    started.wait()
    while worker.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0)  # a pure-Python loop: it only progresses while the lock is free
    worker.join()
    inside = [t for t in ticks if span[0] <= t <= span[1]]
    duration = span[1] - span[0]
    gaps = [b - a for a, b in zip(inside, inside[1:])] or [duration]
    # Holding the lock for the call would stall this thread for the call's whole duration.
    assert len(inside) > 10, (len(inside), duration)
    assert max(gaps) < max(duration / 2, 0.05), (max(gaps), duration)


def test_two_threads_write_in_parallel(db: austa.Database) -> None:
    scopes = [db.scope(new_org(db, f"Paralela {i}").id, austa.Actor.platform()) for i in range(2)]
    errors: List[BaseException] = []

    def work(scope: austa.Scope) -> None:
        try:
            scope.patients.import_rows((patient_row() for _ in range(200)), batch_size=50)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(s,)) for s in scopes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [sum(1 for _ in s.patients.stream()) for s in scopes] == [200, 200]


def test_asyncio_flavour(tmp_path: Path) -> None:
    async def main() -> None:
        async with await austa.aio.Database.open(f"sqlite://{tmp_path / 'aio.db'}", master_key=MASTER_KEY) as adb:
            await adb.migrate()
            assert await adb.backend == "sqlite"
            org = await adb.organizations.create(name="Clínica Async", organization_type="CLINIC")
            scope = await adb.scope(org.id, austa.Actor.platform())
            created = await asyncio.gather(*(scope.patients.create(patient_row()) for _ in range(20)))
            fetched = await asyncio.gather(*(scope.patients.get(p.id) for p in created))
            assert [p.id for p in fetched] == [p.id for p in created]
            streamed = [p.id async for p in scope.patients.stream(page_size=3)]
            assert sorted(streamed) == sorted(p.id for p in created)
            try:
                await scope.patients.get(org.id)
            except austa.NotFound as error:
                assert error.code == "not_found"
            else:
                raise AssertionError("NotFound expected")
            report = await scope.audit.verify()
            assert report.broken is None
            assert (await scope.organization()).id == org.id

    asyncio.run(main())
