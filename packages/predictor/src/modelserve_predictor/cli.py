"""`predictor`: serve registry models through BentoML, show the placement, benchmark."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from modelserve_predictor.errors import PredictorError
from modelserve_predictor.settings import (
    RESOLVED_ENV,
    ModelConfig,
    PredictorSettings,
    load_settings,
)

if TYPE_CHECKING:
    from modelserve_runtime.manifest import Variant
    from modelserve_runtime.store import Registry

err = Console(stderr=True)
out = Console()


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if args.model:
        found["models"] = [ModelConfig.parse(m) for m in args.model]
    for key in (
        "host",
        "port",
        "grpc_port",
        "workers",
        "workers_per_gpu",
        "gpu_map",
        "registry_uri",
        "max_request_bytes",
    ):
        value = getattr(args, key, None)
        if value is not None:
            found[key] = value
    if getattr(args, "gpus", None) is not None:
        found["gpus"] = [int(g) for g in args.gpus.split(",") if g.strip()]
    return found


def _open_registry(settings: PredictorSettings) -> Registry:
    from modelserve_runtime.settings import StoreSettings
    from modelserve_runtime.store import Registry

    store = StoreSettings()
    return Registry.open(settings.registry_uri or store.uri, s3_endpoint_url=store.s3_endpoint_url)


def _served_variants(settings: PredictorSettings, plans: list) -> list[tuple[ModelConfig, Variant]]:
    """Each configured model with each variant it will be served in (one per device kind)."""
    from modelserve_predictor.models import default_variant

    return [
        (config, variant)
        for config in settings.models
        for variant in sorted(
            {config.variant or default_variant(p.models[config.name]) for p in plans}
        )
    ]


def _missing_variants(
    settings: PredictorSettings, registry: Registry, plans: list
) -> dict[str, set[Variant]]:
    """Per model name, the variants this configuration serves that its unpinned reference
    (plain name or `@production`) does not have in the registry yet."""
    from modelserve_runtime.errors import NotFound
    from modelserve_runtime.references import DEFAULT_ALIAS, ModelReference

    missing: dict[str, set[Variant]] = {}
    for config, variant in _served_variants(settings, plans):
        ref = ModelReference.parse(config.ref)
        if ref.version is not None or ref.alias not in (None, DEFAULT_ALIAS):
            continue  # a pinned version or another alias is never built here
        try:
            if variant in registry.manifest(ref).variants:
                continue
        except NotFound:
            pass
        missing.setdefault(config.name, set()).add(variant)
    return missing


def _bootstrap_missing(settings: PredictorSettings, registry: Registry, plans: list) -> None:
    """Build the default models this configuration serves, in the variants it serves, when
    the registry lacks them (first run). Only then is the export stack (torch) imported."""
    missing = _missing_variants(settings, registry, plans)
    if not missing:
        return
    try:
        from modelserve_registry import bootstrap as defaults
        from modelserve_registry.progress import steps
        from modelserve_registry.settings import RegistrySettings
    except ImportError:  # a serving-only install (the image): fetch() names what is missing
        err.print(
            f"not in the registry: {', '.join(sorted(missing))}; this install cannot build "
            "models (run `registry bootstrap` where modelserve-registry is installed, or "
            "install modelserve-predictor[bootstrap])",
            highlight=False,
            soft_wrap=True,
        )
        return
    wanted = {
        name: variants
        for name, variants in missing.items()
        if name in {m.name for m in defaults.DEFAULT_MODELS}
    }
    if not wanted:
        return
    registry_settings = RegistrySettings()
    err.print(
        f"first run: building {', '.join(sorted(wanted))} into {registry.location} "
        f"(validated on a {defaults.FIRST_RUN_SAMPLE}-text sample; "
        "`registry bootstrap --all` builds every model and variant)",
        highlight=False,
        soft_wrap=True,
    )
    with steps() as step:
        for name, variants in sorted(wanted.items()):
            defaults.bootstrap(
                registry,
                registry_settings.cache_dir,
                names=[name],
                variants=sorted(variants),
                eval_csv=registry_settings.eval_csv,
                eval_sample=defaults.FIRST_RUN_SAMPLE,
                step=lambda model, message: step(f"{model}: {message}"),
            )


def prepare(settings: PredictorSettings) -> list[str]:
    """Bootstrap missing default models, pull and verify every configured one. Returns one
    line per model saying what will be served where."""
    from modelserve_predictor.models import default_variant, fetch
    from modelserve_predictor.plan import worker_plans
    from modelserve_runtime.settings import StoreSettings

    plans = worker_plans(settings)
    registry = _open_registry(settings)
    _bootstrap_missing(settings, registry, plans)
    cache = settings.cache_dir or StoreSettings().cache_dir / "pulled"
    lines = []
    for config in settings.models:
        devices = sorted({p.models[config.name] for p in plans}, key=str)
        manifest = registry.manifest(config.ref)
        for device in devices:
            fetch(registry, manifest, config, device, cache)  # pulled and verified now
            variant = (config.variant or default_variant(device)).value
            workers = [p.worker_index for p in plans if p.models[config.name] == device]
            lines.append(
                f"{manifest.name}:{manifest.version} {variant} on {device} "
                f"(workers {','.join(map(str, workers))}, "
                f"{plans[0].threads} threads each)" + (" SYNTHETIC" if manifest.synthetic else "")
            )
    return lines


def _wait_ready(url: str, process: subprocess.Popen, timeout_s: float) -> dict[str, Any] | None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return httpx.get(f"{url}/placement/", timeout=5).json()
            placement = httpx.get(f"{url}/placement/", timeout=5).json()
            errors = [m for m in placement.get("models", []) if m.get("error")]
            if errors:
                return placement
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    settings = load_settings(_overrides(args))
    lines = prepare(settings)
    if settings.control_dir is None:  # where the workers share repository API changes
        import tempfile

        settings.control_dir = Path(tempfile.mkdtemp(prefix="predictor-control-"))
    url = f"http://{settings.host}:{settings.port}"
    env = {
        **os.environ,
        RESOLVED_ENV: settings.to_env(),
        "TOKENIZERS_PARALLELISM": "false",
        # BentoML keeps (and empties at start) its Prometheus multiprocess folder under
        # BENTOML_HOME: one home per server (per port, under the configured home, so that a
        # pod's writes stay on its mounts), so two servers never mix or reset their metrics.
        "BENTOML_HOME": str(
            Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")
            / "servers"
            / str(settings.port)
        ),
    }
    # A restarted worker imports ~1,000 modules; without bytecode caches it compiles every
    # one from source again (1.6 s of a 5 s restart budget on 2 cores, measured), so the
    # server's processes may write them even where the shell says not to.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        env["PREDICTOR_PARENT_CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    command = [
        sys.executable,
        "-m",
        "modelserve_predictor.supervisor",
        "modelserve_predictor.service:Predictor",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--drain-s",
        str(settings.drain_s),
    ]
    process = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: Any) -> None:
        process.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    placement = _wait_ready(url, process, args.ready_timeout)
    if placement is None and process.poll() is None:
        err.print(f"not ready after {args.ready_timeout:.0f} s; still starting at {url}")
    elif placement is not None:
        failed = [m for m in placement["models"] if m.get("error")]
        for model in failed:
            err.print(
                f"NOT READY: {model['model']}: {model['error']}", highlight=False, soft_wrap=True
            )
        if not failed:
            # plain print: one unwrapped line per model, whatever the terminal width
            for line in lines:
                print(f"serving {line} at {url}", flush=True)
            grpc = f"  grpc://{settings.host}:{settings.grpc_port}" if settings.grpc_port else ""
            print(
                f"ready: {url}/analyze-sentiment  {url}/embed  {url}/v2{grpc}  "
                f"{url}/metrics  {url}/placement",
                flush=True,
            )
    return process.wait()


def cmd_placement(args: argparse.Namespace) -> int:
    from modelserve_predictor.plan import worker_plans

    settings = load_settings(_overrides(args))
    for plan in worker_plans(settings):
        models = ", ".join(f"{name} on {device}" for name, device in plan.models.items())
        out.print(
            f"worker {plan.worker_index}: {plan.device}, {plan.threads} threads, "
            f"CUDA_VISIBLE_DEVICES={plan.cuda_visible_devices or '(none)'}: {models}",
            highlight=False,
        )
    return 0


def cmd_wait_for_models(args: argparse.Namespace) -> int:
    """Until every configured model resolves in the registry with the variant it will serve:
    what a pod's init container runs while the bootstrap Job fills the registry."""
    from modelserve_predictor.plan import worker_plans
    from modelserve_runtime.errors import RegistryError

    settings = load_settings(_overrides(args))
    plans = worker_plans(settings)
    deadline = time.monotonic() + args.timeout
    while True:
        waiting = []
        try:
            registry = _open_registry(settings)
            for config, variant in _served_variants(settings, plans):
                try:
                    registry.manifest(config.ref).variant(variant)
                except RegistryError as exc:
                    waiting.append(f"{config.ref} {variant.value}: {exc}")
        except RegistryError as exc:
            waiting.append(f"registry: {exc}")
        if not waiting:
            out.print(f"all {len(settings.models)} models are in the registry")
            return 0
        if time.monotonic() >= deadline:
            for line in waiting:
                err.print(f"error: still missing after {args.timeout:.0f} s: {line}")
            return 3
        err.print(f"waiting for {len(waiting)} model(s): {waiting[0]}", highlight=False)
        time.sleep(args.interval)


def batch_sizes(text: str) -> tuple[int, ...]:
    """`--batch-sizes 1,2,4` -> (1, 2, 4); anything else is a usage error (exit 2)."""
    try:
        sizes = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a comma list of positive integers, not {text!r}"
        ) from None
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, not {text!r}")
    return sizes


def cmd_bench(args: argparse.Namespace) -> int:
    from modelserve_predictor.bench import BenchPlan, run_bench

    run_bench(
        BenchPlan(
            model=args.model,
            out=Path(args.out),
            variants=tuple(v for v in (args.variants or "").split(",") if v),
            batch_sizes=tuple(args.batch_sizes),
            texts=args.texts,
            fixed_tokens=args.fixed_tokens,
            samples=args.samples,
            rounds=args.rounds,
            threads=args.threads,
            device=args.device,
            registry_uri=args.registry_uri,
        )
    )
    return 0


def _add_model_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--model",
        action="append",
        default=None,
        help="NAME[:VERSION|@ALIAS][=VARIANT], repeatable (env PREDICTOR_MODELS)",
    )
    cmd.add_argument("--workers", type=int, default=None, help="CPU workers (PREDICTOR_WORKERS)")
    cmd.add_argument("--workers-per-gpu", type=int, default=None)
    cmd.add_argument("--gpus", default=None, help="e.g. 0,1,2,3 (default: all visible)")
    cmd.add_argument("--gpu-map", default=None, help="e.g. 'a=0,1;b=2' (PREDICTOR_GPU_MAP)")
    cmd.add_argument("--registry-uri", default=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="predictor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="serve the configured models (default: sentiment-minilm and minilm-embed on "
        "127.0.0.1:3000)",
    )
    _add_model_flags(serve)
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--grpc-port", type=int, default=None, help="OIP gRPC port (PREDICTOR_GRPC_PORT; 0 = off)"
    )
    serve.add_argument("--max-request-bytes", type=int, default=None)
    serve.add_argument("--ready-timeout", type=float, default=600.0)
    serve.set_defaults(handler=cmd_serve)
    placement = sub.add_parser("placement", help="print which worker runs what where")
    _add_model_flags(placement)
    placement.set_defaults(handler=cmd_placement)
    wait = sub.add_parser(
        "wait-for-models", help="wait until every configured model is in the registry"
    )
    _add_model_flags(wait)
    wait.add_argument("--timeout", type=float, default=3600.0)
    wait.add_argument("--interval", type=float, default=15.0)
    wait.set_defaults(handler=cmd_wait_for_models)
    bench = sub.add_parser("bench", help="in-process latency/throughput per variant and batch")
    bench.add_argument("model", help="NAME[:VERSION|@ALIAS]")
    bench.add_argument("--variants", default=None, help="comma list (default: all CPU-capable)")
    bench.add_argument("--batch-sizes", type=batch_sizes, default="1,2,4,8,16,32")
    bench.add_argument("--texts", default=None, help="CSV with a 'text' column (real lengths)")
    bench.add_argument("--fixed-tokens", type=int, default=None, help="pad every text to N")
    bench.add_argument("--samples", type=int, default=256, help="texts per measurement")
    bench.add_argument("--rounds", type=int, default=3)
    bench.add_argument("--threads", type=int, default=None)
    bench.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    bench.add_argument("--out", default="out/bench")
    bench.add_argument("--registry-uri", default=None)
    bench.set_defaults(handler=cmd_bench)
    return parser


def cli(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from modelserve_runtime.errors import RegistryError

    try:
        return args.handler(args)
    except (PredictorError, RegistryError) as exc:
        err.print(f"error: {exc}", highlight=False, soft_wrap=True)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        return 130


def main() -> None:
    sys.exit(cli())
