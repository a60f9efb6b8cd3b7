"""The agent's jobs: one measurement at a time on one worker thread, events streamed to any number of readers.

The worker thread only waits on the measuring child process (:func:`edgekit.profiling.local.run_child`, the
same one a local run uses); the event loop never blocks on a job. Events are appended on the loop's thread,
so readers need no locks.
"""
from __future__ import annotations

import asyncio
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edgekit.agent.protocol import RemoteJob
from edgekit.agent.sessions import SessionError, Sessions
from edgekit.agent.uploads import check_external_data
from edgekit.errors import EdgekitError
from edgekit.profiling.local import Event, Job, run_child

KEEP_JOBS = 16


class JobState:
    """Events of one job; :meth:`post` may be called from any thread, :meth:`follow` runs on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.events: list[Event] = []
        self.finished = False
        self._changed = asyncio.Event()

    def post(self, event: Event) -> None:
        try:
            self.loop.call_soon_threadsafe(self._append, event)
        except RuntimeError:  # the loop is closed: the agent is gone, nobody is listening
            pass

    def _append(self, event: Event) -> None:
        if self.finished:
            return
        self.events.append(event)
        self.finished = event.get("event") in ("done", "error")
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self) -> AsyncIterator[Event]:
        """Every event, waiting for new ones until the job finishes."""
        index = 0
        while True:
            waiter = self._changed
            batch, index = self.events[index:], len(self.events)
            for event in batch:
                yield event
            if self.finished and index >= len(self.events):
                return
            if index >= len(self.events):
                await waiter.wait()


class JobRunner:
    """Runs jobs one at a time; at most ``max_waiting`` jobs may be queued or running."""

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting
        self.jobs: OrderedDict[str, JobState] = OrderedDict()
        self.waiting = 0
        self.uploads: set[asyncio.Task] = set()  # requests receiving a job body, cancelled on shutdown
        self.cancel = threading.Event()
        self.sessions = Sessions()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgekit-agent-job")

    def full(self) -> bool:
        return self.waiting >= self.max_waiting or self.cancel.is_set()

    def start(self, job: RemoteJob, folder: Path) -> tuple[str, JobState]:
        """Queue ``job`` (its files are in ``folder``, which is removed when the job ends, whatever happens)."""
        job_id = uuid.uuid4().hex
        state = JobState(asyncio.get_running_loop())
        self.jobs[job_id] = state
        while len(self.jobs) > KEEP_JOBS:
            self.jobs.popitem(last=False)
        state._append({"event": "accepted", "job": job_id})
        if self.waiting:
            state._append({"event": "progress", "stage": "queued", "fraction": 0.0, "message": "waiting for the job before"})
        self.waiting += 1
        try:
            future = self._executor.submit(self._run, job, folder, state)
        except RuntimeError:  # shutting down
            self.waiting -= 1
            shutil.rmtree(folder, ignore_errors=True)
            state._append({"event": "error", "kind": "agent", "message": "the agent is shutting down", "hint": ""})
            return job_id, state
        future.add_done_callback(lambda _: state.loop.call_soon_threadsafe(self._finished))
        return job_id, state

    def _finished(self) -> None:
        self.waiting -= 1

    def exclusive(self, work: Callable[[JobState], None]) -> JobState:
        """Run ``work(state)`` on the job thread (a session's timed runs: one measurement at a time on the
        device, jobs included); its events stream from the returned state, ``queued`` first if it waits."""
        state = JobState(asyncio.get_running_loop())
        if self.waiting:
            state._append({"event": "progress", "stage": "queued", "fraction": 0.0, "message": "waiting for the job before"})
        self.waiting += 1

        def run() -> None:
            try:
                if self.cancel.is_set():
                    raise EdgekitError("the agent is shutting down", "start the agent again")
                work(state)
            except SessionError as exc:
                state.post({"event": "error", **exc.answer(), "message": exc.message})
            except EdgekitError as exc:
                state.post({"event": "error", "kind": type(exc).__name__, "message": exc.message, "hint": exc.hint})
            except Exception as exc:  # never leave a client waiting
                state.post({"event": "error", "kind": "agent", "message": f"agent error: {exc}", "hint": ""})
            finally:
                state.post({"event": "error", "kind": "agent", "message": "the measurement ended without a result", "hint": ""})

        try:
            future = self._executor.submit(run)
        except RuntimeError:  # shutting down
            self.waiting -= 1
            state._append({"event": "error", "kind": "agent", "message": "the agent is shutting down", "hint": ""})
            return state
        future.add_done_callback(lambda _: state.loop.call_soon_threadsafe(self._finished))
        return state

    def _run(self, job: RemoteJob, folder: Path, state: JobState) -> None:
        try:
            if self.cancel.is_set():
                raise EdgekitError("the agent is shutting down", "start the agent again and resend the job")
            local = Job(path=str(folder / job.main), format=job.format, runtime_device=job.runtime_device,
                        settings=job.settings, return_outputs=job.return_outputs,
                        dataset=str(folder / job.dataset.name) if job.dataset else None)
            if job.format == "onnx":
                check_external_data(Path(local.path))
            run_child(local, state.post, cancel=self.cancel)
        except EdgekitError as exc:
            state.post({"event": "error", "kind": type(exc).__name__, "message": exc.message, "hint": exc.hint})
        except Exception as exc:  # never leave a client waiting on a job that cannot finish
            state.post({"event": "error", "kind": "agent", "message": f"agent error: {exc}", "hint": ""})
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            state.post({"event": "error", "kind": "agent", "message": "the job ended without a result", "hint": ""})

    def close(self, timeout: float = 10.0) -> None:
        """Stop the running job's child process, drop queued jobs, and wait for their folders to be removed."""
        self.cancel.set()
        self.sessions.close_all()
        waiter = threading.Thread(target=self._executor.shutdown, daemon=True)
        waiter.start()
        waiter.join(timeout)
