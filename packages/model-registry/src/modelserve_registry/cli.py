"""`registry`: export, push, pull, inspect, verify, remove and garbage-collect models. One
subcommand per verb; every failure is one line on stderr and a non-zero exit code (see
errors.py)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from modelserve_registry.progress import byte_bar, steps
from modelserve_registry.render import manifest_table, megabytes, summary
from modelserve_registry.settings import RegistrySettings
from modelserve_runtime.errors import InvalidReference, NotFound, RegistryError
from modelserve_runtime.garbage import collect_garbage
from modelserve_runtime.manifest import Variant
from modelserve_runtime.references import ModelReference, validate_name
from modelserve_runtime.store import Registry, read_pulled_manifest

out = Console()
err = Console(stderr=True)


def _variants(text: str) -> list[Variant]:
    try:
        return [Variant(item.strip()) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown variant in {text!r}; choose from {', '.join(v.value for v in Variant)}"
        ) from None


def _variant(text: str) -> Variant:
    (variant,) = _variants(text) or [None]
    return variant


def _emit(args: argparse.Namespace, data: object, human: Callable[[], None]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        human()


def cmd_export(args: argparse.Namespace, registry: Registry, settings: RegistrySettings) -> int:
    from modelserve_registry.evaldata import read_eval_csv
    from modelserve_registry.graph import read_source_spec
    from modelserve_registry.pipeline import export_and_push

    validate_name(args.name)  # before any slow work
    source = Path(args.source)
    spec = read_source_spec(source)
    eval_data = None
    if args.eval_csv and spec.task == "text-classification":
        eval_data = read_eval_csv(Path(args.eval_csv), spec.labels, args.eval_limit)
    with steps(not args.json) as step:
        manifest = export_and_push(
            registry,
            source,
            args.name,
            args.variants,
            eval_data=eval_data,
            force=args.force,
            scratch=settings.cache_dir / "scratch",
            step=step,
        )
    if args.tag:
        registry.tag(manifest.name, manifest.version, args.tag)
    aliases = [args.tag] if args.tag else []
    _emit(args, summary(manifest, aliases), lambda: out.print(manifest_table(manifest, aliases)))
    return 0


def cmd_push(args: argparse.Namespace, registry: Registry, settings: RegistrySettings) -> int:
    folder = Path(args.folder)
    pulled = read_pulled_manifest(folder)
    variant = pulled.variant(args.variant)
    with steps(not args.json) as step:
        step(f"pushing {folder}")
        for entry in [*pulled.tokenizer_files, *variant.files]:
            stored = registry.put_file(folder / entry.path, entry.path)
            if stored.sha256 != entry.sha256:
                raise InvalidReference(
                    f"{folder / entry.path} changed since it was exported "
                    "or pulled (sha256 differs from its manifest)"
                )
        manifest = registry.publish(
            pulled.model_copy(update={"name": args.name, "variants": {variant.variant: variant}})
        )
    _emit(args, summary(manifest, []), lambda: out.print(manifest_table(manifest, [])))
    return 0


def cmd_list(args: argparse.Namespace, registry: Registry, settings: RegistrySettings) -> int:
    rows = []
    for name in registry.models():
        aliases = registry.aliases(name)
        for version in registry.versions(name):
            manifest = registry.manifest(ModelReference(name, version=version))
            rows.append((manifest, [a for a, v in aliases.items() if v == version]))
    if args.json:
        print(json.dumps([summary(m, a) for m, a in rows], indent=2, default=str))
    elif not rows:
        err.print(f"the registry at {registry.location} is empty: run `registry bootstrap`")
    else:
        for manifest, aliases in rows:
            out.print(manifest_table(manifest, aliases))
    return 0


def cmd_show(args: argparse.Namespace, registry: Registry, settings: RegistrySettings) -> int:
    manifest = registry.manifest(args.ref)
    aliases = [a for a, v in registry.aliases(manifest.name).items() if v == manifest.version]
    _emit(args, summary(manifest, aliases), lambda: out.print(manifest_table(manifest, aliases)))
    return 0


def cmd_pull(args: argparse.Namespace, registry: Registry, settings: RegistrySettings) -> int:
    manifest = registry.manifest(args.ref)
    variant = manifest.variant(args.variant)
    total = variant.size_bytes + sum(e.size for e in manifest.tokenizer_files)
    with byte_bar(
        f"{manifest.name}:{manifest.version} {variant.variant.value}", total, not args.json
    ) as advance:
        dest = registry.pull(args.ref, variant.variant, Path(args.to), advance)
    data = {
        "name": manifest.name,
        "version": manifest.version,
        "variant": variant.variant.value,
        "path": str(dest.resolve()),
        "bytes": total,
    }
    _emit(
        args,
        data,
        lambda: out.print(
            f"pulled {manifest.name}:{manifest.version} {variant.variant.value} "
            f"({megabytes(total)}, sha256 verified) to {dest}"
        ),
    )
    return 0


def cmd_tag(args: argparse.Namespace, registry: Registry, settings: RegistrySettings) -> int:
    ref = ModelReference.parse(args.ref)
    if ref.version is None:
        raise InvalidReference(f"tag needs NAME:VERSION, got {args.ref!r}")
    registry.tag(ref.name, ref.version, args.alias)
    _emit(
        args,
        {"name": ref.name, "version": ref.version, "alias": args.alias},
        lambda: out.print(f"{ref.name}@{args.alias} -> {ref.version}"),
    )
    return 0


def cmd_verify(args: argparse.Namespace, registry: Registry, settings: RegistrySettings) -> int:
    names = args.names or registry.models()
    for name in names:
        if not registry.versions(name):
            raise NotFound(f"model {name!r} is not in the registry at {registry.location}")
    with steps(not args.json) as step:
        step(f"re-hashing every blob of {len(names)} model(s)")
        problems = registry.verify(names)
    _emit(
        args,
        {"ok": not problems, "problems": [str(p) for p in problems]},
        lambda: out.print("all blobs verified" if not problems else ""),
    )
    for problem in problems:
        err.print(f"error: {problem}", highlight=False)
    return 4 if problems else 0


def cmd_rm(args: argparse.Namespace, registry: Registry, settings: RegistrySettings) -> int:
    ref = ModelReference.parse(args.ref)
    if ref.version is None:
        raise InvalidReference(f"rm needs NAME:VERSION, got {args.ref!r}")
    dropped = registry.remove(ref.name, ref.version, force=args.force)
    _emit(
        args,
        {"removed": str(ref), "aliases_removed": dropped},
        lambda: out.print(
            f"removed {ref}"
            + (f" and alias {', '.join(dropped)}" if dropped else "")
            + "; its blobs stay until `registry gc`"
        ),
    )
    return 0


def cmd_gc(args: argparse.Namespace, registry: Registry, settings: RegistrySettings) -> int:
    with steps(not args.json) as step:
        step(f"looking for blobs no manifest references, older than {args.grace_seconds:g} s")
        report = collect_garbage(registry, args.grace_seconds, dry_run=args.dry_run)
    verb = "would delete" if report.dry_run else "deleted"
    _emit(
        args,
        dataclasses.asdict(report),
        lambda: out.print(
            f"{verb} {len(report.deleted)} unreferenced blob(s), {megabytes(report.freed_bytes)}; "
            f"kept {len(report.kept_young)} younger than {args.grace_seconds:g} s and "
            f"{report.referenced} referenced"
        ),
    )
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def cmd_bootstrap(args: argparse.Namespace, registry: Registry, settings: RegistrySettings) -> int:
    from modelserve_registry.bootstrap import DEFAULT_MODELS, bootstrap
    from modelserve_registry.export import ALL_VARIANTS

    eval_csv = Path(args.eval_csv) if args.eval_csv else settings.eval_csv
    names = args.models or ([m.name for m in DEFAULT_MODELS] if args.all else None)
    variants = args.variants or (ALL_VARIANTS if args.all else None)
    with steps(not args.json) as step:
        pushed = bootstrap(
            registry,
            settings.cache_dir,
            names=names,
            variants=variants,
            eval_csv=eval_csv,
            eval_limit=args.eval_limit,
            eval_sample=args.eval_sample,
            rebuild=args.rebuild,
            step=lambda n, m: step(f"{n}: {m}"),
        )
    _emit(
        args,
        [summary(m, ["production"]) for m in pushed],
        lambda: (
            [out.print(manifest_table(m, ["production"])) for m in pushed]
            or out.print("the default models are already in the registry")
        ),
    )
    return 0


def cmd_train_head(args: argparse.Namespace, registry: Registry, settings: RegistrySettings) -> int:
    from modelserve_registry.head import HEAD_FILE, train_head

    with steps(not args.json) as step:
        step(f"embedding {args.data} and fitting the head")
        card = train_head(
            Path(args.data),
            args.rows,
            Path(args.eval_csv) if args.eval_csv else None,
            out=Path(args.out) if args.out else HEAD_FILE,
        )
    _emit(args, card, lambda: out.print(card))
    return 0


def build_parser(settings: RegistrySettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry", description=__doc__)
    parser.add_argument("--uri", default=settings.uri, help="store (env REGISTRY_URI)")
    parser.add_argument(
        "--s3-endpoint-url",
        default=settings.s3_endpoint_url,
        help="S3-compatible endpoint (env REGISTRY_S3_ENDPOINT_URL)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        cmd.set_defaults(handler=handler)
        return cmd

    eval_default = str(settings.eval_csv) if settings.eval_csv else None
    cmd = command("export", cmd_export, "export, validate and push a Hugging Face model folder")
    cmd.add_argument("source")
    cmd.add_argument("--name", required=True)
    cmd.add_argument("--variants", type=_variants, default=list(Variant))
    cmd.add_argument("--eval-csv", default=None, help="labelled CSV (text,label) to score")
    cmd.add_argument("--eval-limit", type=int, default=settings.eval_limit)
    cmd.add_argument("--force", action="store_true", help="push variants outside tolerance")
    cmd.add_argument("--tag", default=None, help="alias to point at the new version")
    cmd = command("push", cmd_push, "push one variant of a pulled folder as a new version")
    cmd.add_argument("folder")
    cmd.add_argument("--name", required=True)
    cmd.add_argument("--variant", type=_variant, required=True)
    command("list", cmd_list, "every model, version, alias and variant")
    cmd = command("show", cmd_show, "one version's manifest")
    cmd.add_argument("ref", help="NAME[:VERSION|@ALIAS]")
    cmd = command("pull", cmd_pull, "download and verify one variant")
    cmd.add_argument("ref", help="NAME[:VERSION|@ALIAS]")
    cmd.add_argument("--variant", type=_variant, required=True)
    cmd.add_argument("--to", required=True)
    cmd = command("tag", cmd_tag, "point an alias at a version")
    cmd.add_argument("ref", help="NAME:VERSION")
    cmd.add_argument("alias")
    cmd = command("verify", cmd_verify, "re-hash stored blobs; non-zero exit if any is corrupt")
    cmd.add_argument("names", nargs="*")
    cmd = command(
        "rm",
        cmd_rm,
        "delete a version's manifest; its number is never reused and its blobs stay until "
        "`registry gc`",
    )
    cmd.add_argument("ref", help="NAME:VERSION")
    cmd.add_argument("--force", action="store_true", help="also drop aliases pointing at it")
    cmd = command(
        "gc",
        cmd_gc,
        "delete blobs no version references and older than the grace period (one gc at a "
        "time; safe beside pushes that finish within the grace period)",
    )
    cmd.add_argument(
        "--grace-seconds",
        type=_seconds,
        default=settings.gc_grace_seconds,
        help="keep unreferenced blobs younger than this: a push uploads its blobs before its "
        "manifest references them (env REGISTRY_GC_GRACE_SECONDS, default %(default)g)",
    )
    cmd.add_argument("--dry-run", action="store_true", help="report, delete nothing")
    cmd = command(
        "bootstrap",
        cmd_bootstrap,
        "build and push the default offline models: sentiment-minilm and minilm-embed in "
        "their serving variants (onnx-int8, onnx-fp16); --all for every model and variant",
    )
    cmd.add_argument(
        "--all", action="store_true", help="also roberta-base-synthetic, every variant"
    )
    cmd.add_argument("--models", nargs="*", default=None)
    cmd.add_argument("--variants", type=_variants, default=None)
    cmd.add_argument(
        "--eval-sample",
        type=int,
        default=None,
        help="validate on a seeded random sample of this many eval rows (default: all)",
    )
    cmd.add_argument("--eval-csv", default=eval_default)
    cmd.add_argument("--eval-limit", type=int, default=settings.eval_limit)
    cmd.add_argument("--rebuild", action="store_true", help="push new versions even if present")
    cmd = command("train-head", cmd_train_head, "retrain sentiment-minilm's head")
    cmd.add_argument("--data", required=True, help="Sp1786 train.csv")
    cmd.add_argument("--rows", type=int, default=None)
    cmd.add_argument("--eval-csv", default=eval_default)
    cmd.add_argument("--out", default=None)
    return parser


def cli(argv: Sequence[str] | None = None) -> int:
    try:
        settings = RegistrySettings()
    except Exception as exc:  # pydantic ValidationError: one line naming the variable
        err.print(f"error: invalid REGISTRY_* setting: {exc}".splitlines()[0], highlight=False)
        return 2
    args = build_parser(settings).parse_args(argv)
    try:
        registry = Registry.open(args.uri, s3_endpoint_url=args.s3_endpoint_url)
        return args.handler(args, registry, settings)
    except RegistryError as exc:
        err.print(f"error: {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except OSError as exc:
        err.print(f"error: {exc}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


def main() -> None:
    sys.exit(cli())
