"""Drive the same open-loop traffic from Locust's web UI:

    uv run locust -f packages/loadtest/src/modelserve_loadtest/locustfile.py \\
        --host http://127.0.0.1:3000

then start 1 user in the UI (the one user *is* the scheduler: it spawns a greenlet per
arrival). The schedule comes from LOADTEST_* variables: LOADTEST_SCENARIO (steady, moderate,
extreme), LOADTEST_RATE, LOADTEST_SHAPE, LOADTEST_DURATION, LOADTEST_SEED, LOADTEST_TEXTS,
LOADTEST_ENDPOINT, LOADTEST_MODEL, LOADTEST_TOKEN. Latencies in Locust's charts are its own
(rounded); `loadtest run` computes the published figures from raw records."""

from modelserve_loadtest.runner import OpenLoopUser, RunPlan  # noqa: I001 - locust first

from modelserve_loadtest.arrivals import scenario
from modelserve_loadtest.payloads import bodies, read_texts, route
from modelserve_loadtest.settings import LoadtestSettings

_settings = LoadtestSettings()
_process = scenario(_settings.scenario, rate=_settings.rate, shape=_settings.shape)


class ScheduledTraffic(OpenLoopUser):
    plan = RunPlan(
        offsets=_process.schedule(_settings.duration, _settings.seed),
        path=route(_settings.endpoint, _settings.model),
        bodies=bodies(
            read_texts(_settings.texts, _settings.column), _settings.endpoint, _settings.model
        ),
        max_in_flight=_settings.max_in_flight,
        headers={"Authorization": f"Bearer {_settings.token}"} if _settings.token else {},
    )
