#!/usr/bin/env python3
"""Pipeline benchmark: how fast a write becomes a message, and how late the
background resolvers act. Needs a taskjournal with PostgreSQL and RabbitMQ.

  1. completed  reportCompleted -> its task-completed message, paced at --rate/s
  2. dependent  reportCompleted(A) -> the task-pending message of B (B depends on A)
  3. relay      a new relay (name "bench") publishes the whole log; events/s
  4. replay     rebuild every projection from the log; events/s
  5. lateness   claim expiry: run 0 `resolved` - `takenUntil` (claims never reclaimed);
                deadline: run 0 `resolved` - task `deadline` (tasks never claimed)

Messages are received on an exclusive queue bound with `route.<unique>`, the
route every task of the run carries. `bench/run.py` runs this against a
second server of its own and stops that server before phases 3 and 4.
Standalone, against a running server (phases 3 and 4 then run next to it;
phase 5 needs the server started with a short TASKJOURNAL_CLAIM_TIMEOUT):

  TASKCLUSTER_ROOT_URL=... TASKCLUSTER_CLIENT_ID=... TASKCLUSTER_ACCESS_TOKEN=... \\
      python bench/pipeline.py --db-url postgresql://postgres@127.0.0.1:5432/taskjournal
"""

import argparse
import asyncio
import datetime
import json
import sys
import tempfile
import time
import uuid

import aio_pika
import aiohttp
import taskcluster
import taskcluster.aio

EXCHANGE = "exchange/taskcluster-queue/v1/"
DEPENDENCY_QUEUE = "taskjournal.dependency-resolver"  # services/bootstrap.py
BATCH = 32  # tasks per claimWork call
CLAIMERS = 2  # concurrent claimWork loops feeding the paced reportCompleted calls
SPREAD = 2.0  # seconds over which the lateness phase spreads claims and deadlines
MESSAGE_WAIT = 60.0  # seconds to wait for messages after the last call


# ------------------------------------------------------------------ small helpers

def log(msg):
    print(f"[pipeline {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentiles(values_s):
    """Latency summary in milliseconds (nearest-rank, as queue_bench)."""
    if not values_s:
        return {"count": 0}
    ordered = sorted(values_s)

    def rank(p):
        return round(ordered[max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))] * 1000, 2)

    return {"count": len(ordered), "mean_ms": round(sum(ordered) / len(ordered) * 1000, 2),
            "min_ms": round(ordered[0] * 1000, 2), "p50_ms": rank(50), "p95_ms": rank(95), "p99_ms": rank(99),
            "max_ms": round(ordered[-1] * 1000, 2)}


def iso(dt):
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms(text):
    return round(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class Errors:
    def __init__(self):
        self.counts, self.samples = {}, []

    def add(self, where, err):
        status = getattr(err, "status_code", None)
        key = f"{where}:{type(err).__name__}" + (f":{status}" if status else "")
        self.counts[key] = self.counts.get(key, 0) + 1
        if len(self.samples) < 5:
            self.samples.append(f"{key}: {str(err)[:300]}")

    def summary(self):
        return {"total": sum(self.counts.values()), "by_kind": self.counts, "samples": self.samples}


class Missing(Exception):
    pass


# ------------------------------------------------------------------ the live phases

class Pipeline:
    def __init__(self, queue, channel, rate, errors):
        self.queue, self.channel, self.rate, self.errors = queue, channel, rate, errors
        self.run_id = uuid.uuid4().hex[:10]
        self.route = f"pipeline-{self.run_id}"
        self.task_ids = set()  # every task this run created

    def definition(self, name, group_id, deadline_s=3600.0, **extra):
        now = datetime.datetime.now(datetime.timezone.utc)
        return {"taskQueueId": f"pipeline/{name}-{self.run_id}", "schedulerId": "pipeline", "taskGroupId": group_id,
                "routes": [self.route], "created": iso(now),
                "deadline": iso(now + datetime.timedelta(seconds=deadline_s)),
                "expires": iso(now + datetime.timedelta(days=1)), "payload": {},
                "metadata": {"name": f"pipeline {name}", "description": "bench/pipeline.py",
                             "owner": "bench@example.com", "source": "http://127.0.0.1/bench/pipeline"}, **extra}

    async def create(self, definitions, concurrency=16):
        """createTask each {taskId: definition}, C at a time, in order; the ids created."""
        todo, created = iter(definitions.items()), []

        async def creator():
            for task_id, definition in todo:
                try:
                    await self.queue.createTask(task_id, definition)
                    created.append(task_id)
                    self.task_ids.add(task_id)
                except Exception as err:
                    self.errors.add("createTask", err)

        await asyncio.gather(*(creator() for _ in range(concurrency)))
        return created

    async def listen(self, exchange_name):
        """Bind an exclusive queue to the exchange with route.<unique>; {taskId: arrival time}."""
        arrived = {}

        async def on_message(message):
            arrived.setdefault(json.loads(message.body)["status"]["taskId"], time.monotonic())

        queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(EXCHANGE + exchange_name, routing_key=f"route.{self.route}")
        await queue.consume(on_message, no_ack=True)
        return arrived

    async def complete_paced(self, queue_id, count):
        """Claim `count` runs of queue_id and reportCompleted them paced at
        self.rate per second; {taskId: (call start, call return)}, the rate
        reached and the claimWork latencies."""
        claims, calls, times, claim_latencies = asyncio.Queue(), [], {}, []
        until = time.monotonic() + count / self.rate + MESSAGE_WAIT
        asked = 0

        async def claimer():
            """Keep at most two batches waiting: the server's claims are short."""
            nonlocal asked
            while asked < count and time.monotonic() < until:
                if claims.qsize() >= 2 * BATCH:
                    await asyncio.sleep(0.005)
                    continue
                want = min(BATCH, count - asked)
                asked += want
                started = time.monotonic()
                try:
                    got = (await self.queue.claimWork(queue_id, {"workerGroup": "pipeline", "workerId": "w1",
                                                                 "tasks": want}))["tasks"]
                except Exception as err:
                    self.errors.add("claimWork", err)
                    got = []
                    await asyncio.sleep(0.2)
                claim_latencies.append(time.monotonic() - started)
                asked -= want - len(got)
                for claim in got:
                    claims.put_nowait(claim)

        claimers = [asyncio.ensure_future(claimer()) for _ in range(CLAIMERS)]

        async def report(claim):
            task_id, started = claim["status"]["taskId"], time.monotonic()
            try:
                await self.queue.reportCompleted(task_id, str(claim["runId"]))
                times[task_id] = (started, time.monotonic())
            except Exception as err:
                self.errors.add("reportCompleted", err)

        start = time.monotonic()
        try:
            for i in range(count):
                try:
                    claim = await asyncio.wait_for(claims.get(), timeout=max(0.1, until - time.monotonic()))
                except TimeoutError:
                    self.errors.add("claimWork", Missing(f"only {i} of {count} runs claimed"))
                    break
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                calls.append(asyncio.ensure_future(report(claim)))
            await asyncio.gather(*calls)
        finally:
            for task in claimers:
                task.cancel()
        starts = sorted(s for s, _ in times.values())
        reached = round((len(starts) - 1) / (starts[-1] - starts[0]), 1) if len(starts) > 1 else None
        return times, reached, percentiles(claim_latencies)

    async def wait_for(self, arrived, task_ids, what):
        until = time.monotonic() + MESSAGE_WAIT
        while time.monotonic() < until and not all(t in arrived for t in task_ids):
            await asyncio.sleep(0.05)
        missing = [t for t in task_ids if t not in arrived]
        if missing:
            self.errors.add("message", Missing(f"{len(missing)} {what} messages missing, e.g. {missing[0]}"))

    async def phase_completed(self, count):
        arrived = await self.listen("task-completed")
        group = taskcluster.slugId()
        created = await self.create({taskcluster.slugId(): self.definition("c", group) for _ in range(count)})
        log(f"completed: {len(created)} tasks created; reportCompleted at {self.rate}/s")
        times, reached, claim_latency = await self.complete_paced(f"pipeline/c-{self.run_id}", len(created))
        await self.wait_for(arrived, list(times), "task-completed")
        done = [t for t in times if t in arrived]
        result = {"tasks": count, "rate_target_per_s": self.rate, "rate_reached_per_s": reached,
                  "from_return": percentiles([arrived[t] - times[t][1] for t in done]),
                  "from_call_start": percentiles([arrived[t] - times[t][0] for t in done]),
                  "reportCompleted_latency": percentiles([e - s for s, e in times.values()]),
                  "claimWork_latency": claim_latency}
        log(f"completed: message after the call returned p50 {result['from_return'].get('p50_ms')} ms, "
            f"p99 {result['from_return'].get('p99_ms')} ms ({len(done)} messages)")
        return result

    async def phase_dependent(self, pairs):
        arrived = await self.listen("task-pending")
        group = taskcluster.slugId()
        firsts = {taskcluster.slugId(): self.definition("a", group) for _ in range(pairs)}
        created = await self.create(firsts)
        dependent_of = {a: taskcluster.slugId() for a in created}
        await self.create({b: self.definition("b", group, dependencies=[a]) for a, b in dependent_of.items()})
        log(f"dependent: {len(created)} pairs created; reportCompleted(A) at {self.rate}/s")
        times, reached, _ = await self.complete_paced(f"pipeline/a-{self.run_id}", len(created))
        await self.wait_for(arrived, [dependent_of[a] for a in times], "task-pending (of B)")
        done = [a for a in times if dependent_of[a] in arrived]
        result = {"pairs": pairs, "rate_target_per_s": self.rate, "rate_reached_per_s": reached,
                  "from_return": percentiles([arrived[dependent_of[a]] - times[a][1] for a in done]),
                  "from_call_start": percentiles([arrived[dependent_of[a]] - times[a][0] for a in done])}
        log(f"dependent: B pending after reportCompleted(A) returned p50 {result['from_return'].get('p50_ms')} ms, "
            f"p99 {result['from_return'].get('p99_ms')} ms ({len(done)} pairs)")
        return result

    async def resolved_runs(self, task_ids, until):
        """Poll statuses until run 0 of every task is resolved (or `until`); {taskId: status}."""
        while True:
            found, token = [], None
            while True:
                query = {"query": {"continuationToken": token}} if token else {}
                page = await self.queue.statuses({"taskIds": task_ids}, **query)
                found += [s["status"] for s in page["statuses"]]
                token = page.get("continuationToken")
                if not token:
                    break
            done = {s["taskId"]: s for s in found if s["runs"] and s["runs"][0].get("resolved")}
            if len(done) == len(task_ids) or time.monotonic() > until:
                return done
            await asyncio.sleep(0.25)

    async def phase_lateness(self, count):
        """Claims taken one by one and deadlines spread over SPREAD seconds, so
        that they fall all over the resolvers' scan interval."""
        group = taskcluster.slugId()
        expiring = await self.create({taskcluster.slugId(): self.definition("x", group, retries=0)
                                      for _ in range(count)})
        deadlined = await self.create({taskcluster.slugId(): self.definition("d", group, 3 + SPREAD * i / count)
                                       for i in range(count)})
        taken_until, start = [], time.monotonic()
        for i in range(len(expiring)):
            await asyncio.sleep(max(0.0, start + SPREAD * i / count - time.monotonic()))
            try:
                response = await self.queue.claimWork(f"pipeline/x-{self.run_id}", {
                    "workerGroup": "pipeline", "workerId": "w1", "tasks": 1})
                taken_until += [ms(c["takenUntil"]) for c in response["tasks"]]
            except Exception as err:
                self.errors.add("claimWork", err)
        wait_s = (max(taken_until, default=0) - time.time() * 1000) / 1000
        if wait_s > 120:
            return {"skipped": f"claims last {wait_s:.0f} s: start the server with a short "
                               "TASKJOURNAL_CLAIM_TIMEOUT"}
        log(f"lateness: {len(taken_until)} claims expire within {wait_s:.1f}s, {len(deadlined)} deadlines within "
            f"{3 + SPREAD:.0f} s")
        statuses = await self.resolved_runs(expiring + deadlined, time.monotonic() + max(wait_s, 3) + MESSAGE_WAIT)
        missing = len(expiring) + len(deadlined) - len(statuses)
        if missing:
            self.errors.add("resolver", Missing(f"{missing} runs not resolved in time"))
        expiry = [ms(s["runs"][0]["resolved"]) - ms(s["runs"][0]["takenUntil"]) for t, s in statuses.items()
                  if t in expiring and "takenUntil" in s["runs"][0]]
        deadline = [ms(s["runs"][0]["resolved"]) - ms(s["deadline"]) for t, s in statuses.items() if t in deadlined]
        expected = {t: "claim-expired" if t in expiring else "deadline-exceeded" for t in statuses}
        unexpected = [f"{s['runs'][0]['state']}/{s['runs'][0].get('reasonResolved')}" for t, s in statuses.items()
                      if s["runs"][0].get("reasonResolved") != expected[t]]
        if unexpected:
            self.errors.add("resolver", Missing(f"{len(unexpected)} runs resolved otherwise, e.g. {unexpected[0]}"))
        result = {"claim_expiry_lateness": percentiles([v / 1000 for v in expiry]),
                  "deadline_lateness": percentiles([v / 1000 for v in deadline])}
        log(f"lateness: claim expiry p50 {result['claim_expiry_lateness'].get('p50_ms')} ms, "
            f"deadline p50 {result['deadline_lateness'].get('p50_ms')} ms")
        return result


# ------------------------------------------------------------------ the log phases

async def measure_log(db_url, amqp_url, task_ids, errors):
    """Relay the whole log once with a new relay, then replay every projection."""
    from taskjournal.services.relay.relay import Relay
    from taskjournal.shared.bus.rabbit import RabbitPublisher
    from taskjournal.shared.journal import open_journal
    from taskjournal.shared.store.replay import PROJECTIONS, rebuild

    result = {}
    with tempfile.TemporaryDirectory(prefix="taskjournal-pipeline-") as data_dir:
        journal = open_journal(db_url, data_dir)
        try:
            async with RabbitPublisher(amqp_url) as publisher:
                relay = Relay(journal, publisher, name="bench")
                relay.load_position()  # creates tj_relay_position if need be
                relay.position = 0  # a new relay: the whole log
                events, started = 0, time.perf_counter()
                while count := await relay.step():
                    events += count
                seconds = time.perf_counter() - started
                with journal.recorder.datastore.transaction(commit=True) as curs:
                    curs.execute("DELETE FROM tj_relay_position WHERE name = %s", ("bench",))
            result["relay"] = {"events": events, "seconds": round(seconds, 3),
                               "events_per_s": round(events / seconds, 1) if seconds else None}
            log(f"relay: {events} events published in {seconds:.2f}s")
            await drop_republished(amqp_url, task_ids)
            with journal.recorder.datastore.transaction(commit=False) as curs:
                curs.execute(f"SELECT count(*) AS n FROM {journal.recorder.events_table_name}")
                logged = curs.fetchone()["n"]
            started = time.perf_counter()
            position = rebuild(journal, list(PROJECTIONS))
            seconds = time.perf_counter() - started
            result["replay"] = {"events": logged, "position": position, "projections": list(PROJECTIONS),
                                "seconds": round(seconds, 3), "events_per_s": round(logged / seconds, 1)}
            log(f"replay: {logged} events into {len(PROJECTIONS)} projections in {seconds:.2f}s")
        except Exception as err:
            errors.add("log-phases", err)
        finally:
            journal.close()
    return result


async def drop_republished(amqp_url, task_ids):
    """With the server stopped, the relay's second copy of each Task.RunResolved
    waits in the dependency-resolver's durable queue, where the next server on
    this broker would process it: take out those of this run's tasks (anything
    else goes back when the channel closes). Nothing to do if a server consumes."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(DEPENDENCY_QUEUE, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return
        if queue.declaration_result.consumer_count:
            return
        dropped = 0
        while message := await queue.get(fail=False):
            if json.loads(message.body).get("id") in task_ids:
                await message.ack()
                dropped += 1
        log(f"relay: dropped {dropped} republished events from {DEPENDENCY_QUEUE}")
    finally:
        await connection.close()


# ------------------------------------------------------------------ everything

async def measure(root_url, client_id, access_token, amqp_url, db_url=None, tasks=2000, pairs=500, rate=200.0,
                  expiry_tasks=50, before_log_phases=None):
    """Run every phase; `before_log_phases()` (e.g. stopping the server) runs
    between the live phases and the relay/replay ones, which need db_url."""
    errors = Errors()
    result = {"config": {"tasks": tasks, "pairs": pairs, "rate_per_s": rate, "expiry_tasks": expiry_tasks}}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100), timeout=timeout) as session:
        queue = taskcluster.aio.Queue({"rootUrl": root_url, "maxRetries": 0,
                                       "credentials": {"clientId": client_id, "accessToken": access_token}},
                                      session=session)
        connection = await aio_pika.connect(amqp_url)
        try:
            pipeline = Pipeline(queue, await connection.channel(), rate, errors)
            result["completed"] = await pipeline.phase_completed(tasks)
            result["dependent"] = await pipeline.phase_dependent(pairs)
            result["lateness"] = await pipeline.phase_lateness(expiry_tasks)
        finally:
            await connection.close()
    if before_log_phases is not None:
        await asyncio.get_running_loop().run_in_executor(None, before_log_phases)
    if db_url:
        result.update(await measure_log(db_url, amqp_url, pipeline.task_ids, errors))
    result["errors"] = errors.summary()
    return result


def run(**kwargs):
    return asyncio.run(measure(**kwargs))


# ------------------------------------------------------------------ report

def _dig(data, *keys):
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _ms(lat, keys=("p50_ms", "p95_ms", "p99_ms", "max_ms")):
    if not lat or not lat.get("count"):
        return "n/a"
    return " / ".join(str(lat[k]) for k in keys) + f" ms (n={lat['count']})"


def _rate(phase):
    return f"{phase['events']} events in {phase['seconds']} s = {phase['events_per_s']} events/s" if phase else "n/a"


def figures(p):
    """(label, value) rows of the pipeline result."""
    late = p.get("lateness") or {}
    rows = [
        ("reportCompleted rate target / reached", f"{_dig(p, 'completed', 'rate_target_per_s')} / "
                                                  f"{_dig(p, 'completed', 'rate_reached_per_s')} /s"),
        ("reportCompleted call p50 / p95 / p99 / max", _ms(_dig(p, "completed", "reportCompleted_latency"))),
        ("claimWork (32 tasks) call p50 / p95 / p99 / max", _ms(_dig(p, "completed", "claimWork_latency"))),
        ("completed msg after return p50/p95/p99/max", _ms(_dig(p, "completed", "from_return"))),
        ("completed msg after call start p50/p95/p99/max", _ms(_dig(p, "completed", "from_call_start"))),
        ("dependent pending after return p50/p95/p99/max", _ms(_dig(p, "dependent", "from_return"))),
        ("dependent pending after call start p50/p95/p99/max", _ms(_dig(p, "dependent", "from_call_start"))),
        ("relay (new relay, whole log)", _rate(p.get("relay"))),
        ("replay (all projections)", _rate(p.get("replay"))),
    ]
    if "skipped" in late:
        rows.append(("claim-expiry / deadline lateness", late["skipped"]))
    else:
        rows += [("claim-expiry lateness p50 / p95 / max", _ms(late.get("claim_expiry_lateness"),
                                                                ("p50_ms", "p95_ms", "max_ms"))),
                 ("deadline lateness p50 / p95 / max", _ms(late.get("deadline_lateness"),
                                                            ("p50_ms", "p95_ms", "max_ms")))]
    if p.get("server_cpu"):
        cpu = p["server_cpu"]
        rows.append(("CPU cores busy during live phases",
                     f"server {cpu['server_cores']}, postgres {cpu['postgres_cores']}"))
    rows.append(("pipeline errors", str(_dig(p, "errors", "total"))))
    return rows


def print_table(p):
    rows = figures(p)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label.ljust(width)}  {value}")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--db-url", help="the server's PostgreSQL database, for the relay and replay phases")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks completed in phase 1 (default 2000)")
    parser.add_argument("--pairs", type=int, default=500, help="task pairs in phase 2 (default 500)")
    parser.add_argument("--rate", type=float, default=200.0, help="reportCompleted calls per second (default 200)")
    parser.add_argument("--expiry-tasks", type=int, default=50, help="tasks per lateness measurement (default 50)")
    args = parser.parse_args(argv)
    options = taskcluster.optionsFromEnvironment()
    if not options.get("rootUrl") or "credentials" not in options:
        sys.exit("set TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN")
    result = run(root_url=options["rootUrl"], client_id=options["credentials"]["clientId"],
                 access_token=options["credentials"]["accessToken"], amqp_url=args.amqp_url, db_url=args.db_url,
                 tasks=args.tasks, pairs=args.pairs, rate=args.rate, expiry_tasks=args.expiry_tasks)
    print_table(result)
    print(json.dumps(result))
    return 1 if result["errors"]["total"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
