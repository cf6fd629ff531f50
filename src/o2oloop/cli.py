"""The o2oloop command line: serve, db, keys (and the loop's batch jobs as they land)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from o2oloop import migrations
from o2oloop.auth import service as keys
from o2oloop.auth.models import Role
from o2oloop.config import Settings, get_settings
from o2oloop.db import Database

app = typer.Typer(help="o2oloop: the O2O closed-loop platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
codes_app = typer.Typer(help="Redemption codes.", no_args_is_help=True)
app.add_typer(codes_app, name="codes")
campaigns_app = typer.Typer(help="Campaigns and their messages.", no_args_is_help=True)
app.add_typer(campaigns_app, name="campaigns")
reviews_app = typer.Typer(help="The public review log.", no_args_is_help=True)
app.add_typer(reviews_app, name="reviews")
dashboard_app = typer.Typer(help="The console dashboard's hourly aggregate.", no_args_is_help=True)
app.add_typer(dashboard_app, name="dashboard")

console = Console()
ANALYSIS_NICENESS = 10  # `analyze` runs behind the server on a shared machine


def _settings() -> Settings:
    settings = get_settings()
    settings.check_production()
    return settings


def open_database(settings: Settings) -> Database:
    """Connect, and bring the schema up to date (a fresh SQLite file is created here)."""
    db = Database.from_url(settings.effective_database_url)
    migrations.upgrade(db)
    return db


def _first_admin_key(db: Database) -> str | None:
    with db.transaction() as session:
        if keys.has_platform_admin(session):
            return None
        _, token = keys.issue_key(session, role=Role.PLATFORM_ADMIN, label="first admin")
        return token


def _keys_file(settings: Settings) -> Path:
    return settings.data_dir / "keys.json"


def _remember_keys(settings: Settings, new: dict[str, str]) -> dict[str, str]:
    """Local development convenience: keep printed keys in a private file under data_dir.

    Only the hashes live in the database; this file exists so `o2oloop up` can show a
    newcomer the keys again. Production deployments never write it.
    """
    path = _keys_file(settings)
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if new:
        known.update(new)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=2))
        os.chmod(path, 0o600)
    return known


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration."""
    settings = _settings()
    open_database(settings)
    console.print(f"[green]schema up to date[/] at {settings.effective_database_url}")


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision adds")],
    rev_id: Annotated[str, typer.Option(help="Revision id, e.g. 0002")],
    head: Annotated[str, typer.Option(help="Parent revision (a domain's own branch)")] = "0001",
    depends_on: Annotated[str | None, typer.Option(help="Revision of another branch")] = None,
) -> None:
    """For developers: autogenerate a revision against a scratch SQLite at every head."""
    import tempfile

    from alembic import command

    with tempfile.TemporaryDirectory() as scratch:
        db = Database.from_url(f"sqlite:///{scratch}/scratch.db")
        config = migrations.alembic_config(db)
        command.upgrade(config, "heads")
        command.revision(
            config,
            message=message,
            autogenerate=True,
            rev_id=rev_id,
            head=head,
            depends_on=depends_on,
        )
        db.dispose()


@keys_app.command("create")
def keys_create(label: Annotated[str, typer.Option(help="What the key is for")] = "") -> None:
    """Create a platform admin key; its token is printed once."""
    db = open_database(_settings())
    with db.transaction() as session:
        key, token = keys.issue_key(session, role=Role.PLATFORM_ADMIN, label=label)
    console.print(f"platform admin key [bold]{key.id}[/]")
    console.print(token, soft_wrap=True, markup=False, highlight=False)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (key_…)."""
    from o2oloop.auth.principal import Principal

    db = open_database(_settings())
    operator = Principal(key_id="cli", role=Role.PLATFORM_ADMIN)
    with db.transaction() as session:
        key = keys.revoke_key(session, principal=operator, key_id=key_id)
    console.print(f"revoked [bold]{key.id}[/] at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


@codes_app.command("issue")
def codes_issue(
    offer: Annotated[str, typer.Option(help="Offer id (ofr_…) of a free coupon")],
    count: Annotated[int, typer.Option(help="How many codes, up to 1,000,000")],
    out: Annotated[Path, typer.Option(help="CSV file to write")] = Path("codes.csv"),
) -> None:
    """Bulk codes for a brand campaign: one batch row, every code derived into a CSV file."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from o2oloop.auth.principal import Principal
    from o2oloop.codes import export
    from o2oloop.codes import service as codes
    from o2oloop.offers.models import Offer

    settings = _settings()
    db = open_database(settings)
    keys = codes.Keys.from_secret(settings.secret_key)
    operator = Principal(key_id="cli", role=Role.PLATFORM_ADMIN)
    with db.transaction() as session:
        found = session.get(Offer, offer)
        if found is None:
            raise typer.BadParameter(f"no offer {offer}", param_hint="--offer")
        batch = codes.issue_batch(
            session, principal=operator, merchant_id=found.merchant_id, offer_id=offer, count=count
        )
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
    chunk = export.CHUNK
    parts = export.batch_csv(keys.code, batch.batch_no, batch.count, chunk=chunk)
    with out.open("wb") as handle, Progress(*columns, TimeRemainingColumn()) as bar:
        task = bar.add_task(f"batch {batch.batch_no}", total=batch.count)
        handle.write(next(parts))  # the header line
        for start, rows in zip(range(0, batch.count, chunk), parts, strict=True):
            handle.write(rows)
            bar.advance(task, min(chunk, batch.count - start))
    console.print(
        f"batch [bold]{batch.id}[/] (no. {batch.batch_no}): {batch.count:,} codes → {out}"
    )


payments_app = typer.Typer(help="The sandbox payment provider.", no_args_is_help=True)
app.add_typer(payments_app, name="payments")


@payments_app.command("deliver")
def payments_deliver(
    url: Annotated[
        str | None,
        typer.Option(help="POST events to this webhook URL instead of handling them in-process"),
    ] = None,
) -> None:
    """Let the sandbox provider complete due charges, refunds and payouts and send webhooks."""
    from o2oloop.bootstrap import bootstrap
    from o2oloop.payments import pending
    from o2oloop.payments import service as payments
    from o2oloop.payments.provider import deliver_pending_events, http_sender, webhook_secret

    settings = _settings()
    db = open_database(settings)
    wiring = bootstrap(settings, db=db)
    secret = webhook_secret(settings.secret_key)
    send = http_sender(url) if url else payments.local_sender(db, secret)
    pending.run_now(db, wiring.handlers_for)  # what was asked for and not yet sent
    report = deliver_pending_events(db, send=send, secret=secret)
    pending.run_now(db, wiring.handlers_for)  # the other domains' reactions
    console.print(
        f"{report.completed} completed by the provider, {report.delivered} events delivered, "
        f"{report.failed} to retry"
    )


refunds_app = typer.Typer(help="Refunds of prepaid money.", no_args_is_help=True)
app.add_typer(refunds_app, name="refunds")


@refunds_app.command("run-expired")
def refunds_run_expired() -> None:
    """Refund unused vouchers that have expired: the consumer never loses prepaid money."""
    from o2oloop.bootstrap import refund_expired_vouchers

    settings = _settings()
    db = open_database(settings)
    console.print(f"{refund_expired_vouchers(db)} expired vouchers refunded")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Worker threads")] = 1,
    once: Annotated[
        bool, typer.Option(help="Run what is due now (every periodic job's slot too), then exit")
    ] = False,
) -> None:
    """The worker pool: the outbox's handlers and the periodic jobs, as bootstrap wires them."""
    import signal
    import threading

    from o2oloop.bootstrap import bootstrap
    from o2oloop.jobs.worker import Config, Pool

    settings = _settings()
    db = open_database(settings)
    pool = Pool(
        db,
        bootstrap(settings, db=db),
        config=Config.from_settings(settings),
        concurrency=concurrency,
    )
    if once:
        outcome = pool.workers[0].drain()
        console.print(
            f"{outcome.done} jobs done, {outcome.retried} to retry, {outcome.dead} dead-lettered"
        )
        db.dispose()
        return
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    pool.start()
    console.print(
        f"worker pool of {concurrency} on {db.dialect}; Ctrl-C stops after the jobs in hand"
    )
    stopped.wait()
    pool.shutdown()
    outcome = pool.outcome()
    console.print(f"stopped: {outcome.done} jobs done, {outcome.dead} dead-lettered")
    db.dispose()


jobs_app = typer.Typer(help="The worker's jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("list")
def jobs_list(
    state: Annotated[str | None, typer.Option(help="pending, running, done or dead")] = None,
    handler: Annotated[str | None, typer.Option(help="Only this handler or periodic job")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
) -> None:
    """Jobs, oldest first (as JSON lines), and how many there are in each state."""
    from o2oloop.auth.principal import Principal
    from o2oloop.jobs import service as jobs
    from o2oloop.jobs.models import JobState

    try:
        wanted = JobState(state) if state else None
    except ValueError:
        raise typer.BadParameter(
            f"one of {', '.join(s.value for s in JobState)}", param_hint="--state"
        ) from None
    operator = Principal(key_id="cli", role=Role.PLATFORM_ADMIN)
    db = open_database(_settings())
    with db.reading() as session:
        found, _ = jobs.list_jobs(
            session, principal=operator, state=wanted, handler=handler, limit=limit
        )
        for job in found:
            typer.echo(json.dumps(jobs.describe(job)))
        typer.echo(json.dumps({"counts": jobs.counts(session, principal=operator)}))
    db.dispose()


@jobs_app.command("retry")
def jobs_retry(job_id: str) -> None:
    """Re-drive a dead job: it runs again with a fresh set of attempts."""
    from o2oloop.auth.principal import Principal
    from o2oloop.errors import ProblemError
    from o2oloop.jobs import service as jobs

    operator = Principal(key_id="cli", role=Role.PLATFORM_ADMIN)
    db = open_database(_settings())
    try:
        with db.transaction() as session:
            job = jobs.retry_job(session, principal=operator, job_id=job_id)
    except ProblemError as error:
        console.print(f"[red]{error.detail}[/]")
        raise typer.Exit(1) from None
    console.print(f"job [bold]{job.id}[/] ({job.handler}) is pending again")
    db.dispose()


@reviews_app.command("checkpoint")
def reviews_checkpoint(
    force: Annotated[bool, typer.Option(help="Sign even if the last one is recent")] = False,
) -> None:
    """Sign a checkpoint of the review log if one is due (the worker does this regularly)."""
    from o2oloop.reviews.jobs import sign_checkpoint_if_due

    settings = _settings()
    signed = sign_checkpoint_if_due(open_database(settings), settings, force=force)
    if signed is None:
        console.print("no checkpoint due: the latest is recent and covers every entry")
    else:
        console.print(signed[1], end="", markup=False, highlight=False)


@reviews_app.command("verify")
def reviews_verify(
    url: Annotated[str, typer.Option(help="The platform's base URL")],
    state: Annotated[
        Path | None, typer.Option(help="JSON file with the last verified checkpoint")
    ] = None,
    review: Annotated[
        list[str] | None, typer.Option(help="A review id to prove included (repeatable)")
    ] = None,
    vkey: Annotated[
        str | None, typer.Option(help="The log's verifier key (default: pinned on first use)")
    ] = None,
) -> None:
    """Verify the review log from its public API alone; exits 1 on any inconsistency."""
    from o2oloop.reviews.verify import verify

    report = verify(url, state_path=state, vkey=vkey, review_ids=review or [])
    typer.echo(json.dumps(report.as_dict(), indent=2))
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def settle(
    cutoff: Annotated[
        str | None, typer.Option(help="ISO 8601 time with offset; everything payable up to it")
    ] = None,
    merchant: Annotated[str | None, typer.Option(help="Only this merchant (mer_…)")] = None,
    statements: Annotated[
        Path | None, typer.Option(help="Directory to write each batch's CSV statement to")
    ] = None,
) -> None:
    """Settlement: per merchant, batch everything payable up to the cutoff and pay it out."""
    from datetime import datetime

    from rich.progress import Progress

    from o2oloop import clock
    from o2oloop.settlement import service as settlement

    try:
        at = datetime.fromisoformat(cutoff) if cutoff else clock.now()
    except ValueError:
        raise typer.BadParameter("use ISO 8601, e.g. 2026-06-01T00:00:00+08:00") from None
    if at.tzinfo is None:
        raise typer.BadParameter("the cutoff needs a UTC offset, e.g. …T00:00:00Z")
    db = open_database(_settings())
    with db.transaction() as session:
        merchant_ids = [merchant] if merchant else settlement.merchants_to_settle(session)
    paid = carried = 0
    with Progress(console=console) as bar:
        task = bar.add_task("settling", total=len(merchant_ids))
        for merchant_id in merchant_ids:
            with db.transaction() as session:
                batch = settlement.settle_merchant(session, merchant_id=merchant_id, cutoff=at)
                if batch is not None:
                    paid += batch.payout_amount > 0
                    carried += batch.payout_amount == 0
                    if statements is not None:
                        statements.mkdir(parents=True, exist_ok=True)
                        (statements / f"{batch.id}.csv").write_text(
                            settlement.statement_csv(session, batch)
                        )
            bar.advance(task)
    console.print(
        f"settled up to {at.isoformat()}: {paid} payouts requested, {carried} carried forward, "
        f"{len(merchant_ids) - paid - carried} with nothing due"
    )


@app.command()
def analyze(
    merchant: Annotated[str | None, typer.Option(help="Only this merchant (mer_…)")] = None,
    as_of: Annotated[
        str | None, typer.Option(help="ISO 8601 time with offset to analyse up to; default now")
    ] = None,
    niceness: Annotated[
        int, typer.Option(help="Added to this process's niceness: the server's requests first")
    ] = ANALYSIS_NICENESS,
) -> None:
    """Customer analytics: fit BG/NBD and Gamma-Gamma, score and segment every member."""
    from datetime import datetime

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from o2oloop.analytics import service as analytics

    try:
        at = datetime.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise typer.BadParameter("use ISO 8601, e.g. 2026-06-01T00:00:00+08:00") from None
    if at is not None and at.tzinfo is None:
        raise typer.BadParameter("--as-of needs a UTC offset, e.g. …T00:00:00Z")
    db = open_database(_settings())
    # Fitting and scoring are CPU-bound for minutes on a large platform; on a machine shared
    # with the server, the tills' requests come first.
    if niceness:
        os.nice(niceness)
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("reading visits", total=None)

        def advance(done: int, total: int, merchant_id: str) -> None:
            bar.update(task, total=total, completed=done, description=f"scored {merchant_id}")

        summary = analytics.analyze_in_batches(db, merchant_id=merchant, as_of=at, progress=advance)
        bar.update(task, description="committed")
    console.print(
        f"analysed {summary.members:,} members of {summary.merchants:,} merchants "
        f"as of {summary.as_of.isoformat()} in {summary.seconds:.1f} s "
        f"({summary.platform_fallbacks} on the platform-wide model)"
    )


@dashboard_app.command("rebuild")
def dashboard_rebuild(
    merchant: Annotated[str | None, typer.Option(help="Only this merchant")] = None,
) -> None:
    """Count existing visits into the dashboard's hourly aggregate (once, after upgrading to
    it); it replaces what it counts, so running it again only recounts."""
    from o2oloop.dashboard import backfill

    settings = _settings()
    db = open_database(settings)
    with db.reading() as session:
        merchant_ids = [merchant] if merchant else backfill.merchant_ids(session)
    hours = 0
    for merchant_id in merchant_ids:
        with db.transaction() as session:
            hours += backfill.rebuild(session, merchant_id=merchant_id)
    console.print(f"{hours:,} store hours counted for {len(merchant_ids):,} merchants")
    db.dispose()


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Same seed, same city")] = 7,
    consumers: Annotated[int, typer.Option(help="Consumers in the city")] = 20_000,
    merchants: Annotated[int, typer.Option(help="Merchants (two stores each)")] = 50,
    days: Annotated[int, typer.Option(help="Days of the loop to simulate, ending now")] = 180,
    progress_file: Annotated[
        Path | None, typer.Option(help="Write progress here (as `up` does behind its server)")
    ] = None,
) -> None:
    """Build the demo city and run the loop for months through the real services."""
    from o2oloop.sim import launch

    settings = _settings()
    if settings.env == "production":
        raise typer.BadParameter("the demo city is for development databases only")
    db = open_database(settings)
    if not _is_empty(db):
        # One seed makes one set of ids: a second city would collide with the first.
        raise typer.BadParameter(
            "the demo city goes into a new database and this one holds merchants already; "
            "point O2O_DATABASE_URL at a new file"
        )
    report = launch.build(
        settings,
        db,
        seed=seed,
        consumers=consumers,
        merchants=merchants,
        days=days,
        remember=lambda keys: _remember_keys(settings, keys),
        console=console,
        progress_file=progress_file,
    )
    if progress_file is None:
        _print_keys(report.keys | report.logins, f"Demo keys (also in {_keys_file(settings)})")
    db.dispose()


def _is_empty(db: Database) -> bool:
    from sqlalchemy import select

    from o2oloop.merchants.models import Merchant

    with db.transaction() as session:
        return session.scalar(select(Merchant.id).limit(1)) is None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Migrate, make sure a platform admin key exists, and serve the API."""
    settings = _settings()
    db = open_database(settings)
    token = _first_admin_key(db)
    if token:
        if settings.env != "production":
            _remember_keys(settings, {"platform_admin": token})
        _print_keys({"platform_admin": token}, "First platform admin key (shown once)")
    db.dispose()
    _run_server(settings, host, port, workers)


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind")] = None,
    demo_consumers: Annotated[
        int, typer.Option(help="Consumers of the demo city loaded into a new database (0: none)")
    ] = 8_000,
) -> None:
    """Newcomer's start: migrate, serve at once, and fill a new database with the demo city
    behind the server (its logins are printed as soon as they exist)."""
    from o2oloop.sim import launch, progress

    settings = _settings()
    if settings.env == "production":
        raise typer.BadParameter("`up` is for development; use `o2oloop serve` in production")
    db = open_database(settings)
    builder = None
    if demo_consumers and _is_empty(db):
        console.print("a new database: the demo city builds behind the server, so every page fills")
        builder = launch.start_behind(settings, consumers=demo_consumers)
        try:
            import o2oloop.api  # noqa: F401  (the server's import, while the city starts)

            launch.wait_for_logins(builder, progress.path_in(settings.data_dir))
        except BaseException:
            launch.stop(builder)
            raise
    else:
        _note_unfinished_city(settings)
    token = _first_admin_key(db)
    known = _remember_keys(settings, {"platform_admin": token} if token else {})
    db.dispose()
    bind = f"http://{host or settings.host}:{port or settings.port}"
    if known:
        # Paths (the terminal's pairing link) are shown as links to this server.
        shown = {
            who: bind + value if value.startswith("/") else value for who, value in known.items()
        }
        _print_keys(shown, f"Logins (also in {_keys_file(settings)}); sign in at {bind}/signin")
    if builder is not None:
        console.print(f"the demo city fills in behind: progress at [bold]{bind}/demo-city[/]")
    try:
        _run_server(settings, host, port, 1)
    finally:
        launch.stop(builder)


def _note_unfinished_city(settings: Settings) -> None:
    from o2oloop.sim import progress

    state = progress.read(progress.path_in(settings.data_dir))
    if state and state.get("state") != "ready" and not progress.alive(state):
        console.print(
            f"[yellow]the demo city stopped at {progress.percent(state)}%[/]; to build it "
            f"again, stop the server, remove {settings.data_dir}/ and run ./dev up"
        )


def _print_keys(tokens: dict[str, str], title: str) -> None:
    console.rule(title)
    for who, token in tokens.items():
        # Unwrapped and unstyled, so a key can be copied in one piece.
        console.print(f"{who:>16}  {token}", soft_wrap=True, markup=False, highlight=False)
    console.rule()


def _run_server(settings: Settings, host: str | None, port: int | None, workers: int) -> None:
    bind_host, bind_port = host or settings.host, port or settings.port
    console.print(f"o2oloop serving on [bold]http://{bind_host}:{bind_port}[/]  (docs at /docs)")
    uvicorn.run(
        "o2oloop.api:app_from_env",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        # A worker still importing on a busy machine answers the supervisor's ping late;
        # the default 5 s had it killed and restarted, so the server never came up.
        timeout_worker_healthcheck=60,
        log_level="info",
        access_log=settings.access_log,
    )


if __name__ == "__main__":
    app()


@campaigns_app.command("run")
def campaigns_run() -> None:
    """Evaluate every due trigger, send pending codes and messages, take delivery reports."""
    from o2oloop.bootstrap import bootstrap
    from o2oloop.campaigns.policy import Policy
    from o2oloop.campaigns.runner import run_campaigns
    from o2oloop.notify.sms import SandboxSmsProvider

    settings = _settings()
    db = open_database(settings)
    wiring = bootstrap(settings)
    run = run_campaigns(
        db, policy=Policy.from_settings(settings), sms=SandboxSmsProvider(db), email=wiring.email
    )
    console.print_json(json.dumps(run.summary()))
    db.dispose()
