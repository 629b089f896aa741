"""The weekly digest on the real bundled documents and market data."""

from __future__ import annotations

import struct
from datetime import date

import pytest
import sqlite_utils

from monitor import store
from monitor.documents import Document
from monitor.extract.extractor import Extractor
from monitor.extract.stage import extract_pending
from monitor.fetch.replay import ReplayPlan, replay_samples
from monitor.market.replay import replay_market
from monitor.notify.charts import scorecard_chart
from monitor.notify.digest import (
    build_digest,
    default_week_end,
    digest_html,
    digest_message,
    iso_week_bounds,
    render_digest,
    render_html,
    render_text,
    summary_text,
)
from monitor.ledger.stage import LedgerReader, update_ledgers
from monitor.score.stage import score_pending
from monitor.score.thesis import load_theses
from tests.conftest import MODEL, ROOT, RULES, SAMPLES

# A subset keeps the module fast; CLSK has market data but no document (a company "without data").
TICKERS = ["MARA", "WULF", "APLD", "CLSK"]
W33 = iso_week_bounds("2025-W33")[1]  # 11-17 Aug 2025: TeraWulf's Fluidstack leases, MARA's 8-K
W35 = iso_week_bounds("2025-W35")[1]  # 25-31 Aug 2025: Applied Digital's second CoreWeave lease
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

READER = LedgerReader.from_dir(RULES)


@pytest.fixture(scope="module")
def theses():
    [seed] = load_theses(ROOT / "rules" / "theses")
    return [seed.model_copy(update={"companies": TICKERS})]


@pytest.fixture(scope="module")
def bundled(tmp_path_factory, theses):
    """Bundled documents and market files, extracted and scored (alerts and scorecard history in place)."""
    db = store.open_db(tmp_path_factory.mktemp("digest") / "monitor.db")
    replay_samples(db, ReplayPlan(SAMPLES, set(TICKERS)))
    replay_market(db, SAMPLES / "market")
    extract_pending(db, Extractor.from_paths(RULES, MODEL))
    score_pending(db, theses, reader=READER)
    yield db
    db.close()


@pytest.fixture(scope="module")
def w33(bundled, theses):
    return build_digest(bundled, theses, W33)


@pytest.fixture(scope="module")
def rendered(w33, tmp_path_factory):
    return render_digest(w33, tmp_path_factory.mktemp("digest-out"))


def copy_of(db: sqlite_utils.Database, path) -> sqlite_utils.Database:
    copy = sqlite_utils.Database(path)
    db.conn.backup(copy.conn)
    return copy


def add_document(db, ticker: str, day: str, key: str, disclosures: list[dict], url: str = "https://example.com/pr"):
    [doc_id] = store.save_documents(db, [Document(source="manual", ext_id=key, ticker=ticker, url=url,
                                                  text=f"test document {key}", title=f"title {key}", form="PR",
                                                  published_at=day)])
    store.save_extraction(db, doc_id, "test", disclosures)
    update_ledgers(db, [ticker], READER)  # as the score stage does after every extraction
    return doc_id


def company(digest, ticker: str):
    return next(c for c in digest.companies() if c.ticker == ticker)


# --- weeks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("week, monday", [
    ("2025-W35", date(2025, 8, 25)), ("2025-W01", date(2024, 12, 30)), ("2020-W53", date(2020, 12, 28)),
    (" 2024w01 ", date(2024, 1, 1)),
])
def test_iso_week_bounds_gives_monday_and_sunday(week, monday):
    start, end = iso_week_bounds(week)
    assert start == monday and start.weekday() == 0
    assert (end - start).days == 6 and end.weekday() == 6


@pytest.mark.parametrize("week", ["2025-W54", "2025-W00", "2021-W53", "2025-35", "2025-W3x", "", "W35-2025"])
def test_iso_week_bounds_rejects_what_is_not_an_iso_week(week):
    with pytest.raises(ValueError, match="is not an ISO week"):
        iso_week_bounds(week)


def test_default_week_end_is_the_last_completed_sunday():
    assert default_week_end(date(2025, 9, 1)) == date(2025, 8, 31)  # Monday: yesterday
    assert default_week_end(date(2025, 9, 3)) == date(2025, 8, 31)
    assert default_week_end(date(2025, 8, 31)) == date(2025, 8, 24)  # Sunday: not completed yet


# --- building -----------------------------------------------------------------------------------


def test_the_digest_shows_the_scorecard_now_and_a_week_ago_and_what_moved_it(w33):
    assert (w33.week, w33.start, w33.end) == ("2025-W33", date(2025, 8, 11), date(2025, 8, 17))
    wulf = company(w33, "WULF")
    assert wulf.active and wulf.backing > wulf.backing_before
    compute_pillar = next(p for p in wulf.pillars if p.id == "contracted_compute")
    assert compute_pillar.after > compute_pillar.before and compute_pillar.delta > 0
    assert {m.commitment for m in wulf.moved} == {"binding", "soft"}
    for item in wulf.moved:
        assert item.sentence and item.url.startswith("https://") and W33 - date.resolution * 6 <= item.day <= W33
    lead = wulf.moved[0]
    assert lead.commitment == "binding" and lead.points > 0 and "Contracted compute" in lead.pillars
    assert any(a.severity == "high" and a.direction == "positive" for a in wulf.alerts)


def test_open_risks_carry_their_value_and_explanation(w33):
    wulf = company(w33, "WULF")
    btc = next(r for r in wulf.risks if r.pillar == "btc_drawdown")
    assert 0 < btc.value < 100 and "btc_usd" in btc.why and "below its 365-day high" in btc.why
    assert {r.pillar for r in wulf.risks} >= {"btc_drawdown", "credit_spread", "financing_cost", "mining_deterioration"}
    assert next(m for m in w33.market if m.series == "btc_usd").value > 0


def test_documents_without_disclosures_and_companies_without_data_are_listed(w33):
    mara = company(w33, "MARA")
    assert any("000164117225023015" in doc.url for doc in mara.documents)  # the 8-K of 11 Aug 2025
    assert w33.theses[0].without_data == ()  # every watched company has bundled data (CLSK since issue 15.6)
    assert [c.ticker for c in w33.theses[0].companies][:2] == ["MARA", "WULF"]  # active companies first


def test_pending_items_are_soft_announcements_not_yet_confirmed(bundled, theses):
    apld = company(build_digest(bundled, theses, W35), "APLD")
    assert apld.pending and all(p.day > W35 - date.resolution * 180 for p in apld.pending)
    assert any(p.type == "power" for p in apld.pending)  # "planned to ... scale up to 1 gigawatt": no binding yet
    # The soft CoreWeave mention came with binding CoreWeave leases the same day: confirmed, so not pending.
    assert not any(p.type == "contracted_compute" and p.counterparty == "CoreWeave" for p in apld.pending)
    assert any(m.commitment == "soft" for m in apld.moved) and any(m.commitment == "binding" for m in apld.moved)


def test_a_soft_announcement_leaves_pending_once_a_binding_one_confirms_it(bundled, theses, tmp_path):
    db = copy_of(bundled, tmp_path / "copy.db")
    soft = {"type": "partnership", "commitment": "soft", "direction": "positive", "counterparty": "Acme Cloud",
            "sentence": "WULF signed a non-binding letter of intent with Acme Cloud for a joint venture."}
    add_document(db, "WULF", "2025-07-01", "soft-acme", [soft])
    pending = company(build_digest(db, theses, W33), "WULF").pending
    assert [p.sentence for p in pending] == [soft["sentence"]]
    assert pending[0].age_days == 47 and pending[0].lapses_on == date(2025, 12, 28)
    add_document(db, "WULF", "2025-08-20", "binding-acme", [{**soft, "commitment": "binding",
                                                             "sentence": "WULF entered into a JV with Acme Cloud."}])
    assert company(build_digest(db, theses, W33), "WULF").pending  # the confirmation comes after this week
    assert not company(build_digest(db, theses, W35), "WULF").pending
    db.close()


# --- rendering ----------------------------------------------------------------------------------


def test_render_digest_writes_html_text_and_a_png_per_company(w33, rendered):
    assert rendered.html_path.name == "digest-2025-W33.html" and rendered.text_path.name == "digest-2025-W33.txt"
    assert {p.name for p in rendered.chart_paths} == {f"digest-2025-W33-mara-ai-pivot-{t}.png"
                                                      for t in ("MARA", "WULF", "APLD", "CLSK")}
    for chart in rendered.chart_paths:
        data = chart.read_bytes()
        assert chart.parent == rendered.html_path.parent
        assert data.startswith(PNG_MAGIC) and len(data) > 20_000
        width, height = struct.unpack(">II", data[16:24])
        assert (width, height) == (900, 450)
    html = rendered.html_path.read_text(encoding="utf-8")
    for chart in rendered.chart_paths:
        assert f'src="{chart.name}"' in html  # relative: the page works wherever the folder goes
    assert "BINDING" in html and "SOFT" in html and "Open risks" in html and "Pending" in html
    wulf = company(w33, "WULF")
    assert f'href="{wulf.moved[0].url}"' in html
    text = rendered.text_path.read_text(encoding="utf-8")
    assert "WULF" in text and "[BINDING]" in text and "BTC drawdown" in text and "source: https://" in text
    assert "Chart: digest-2025-W33-mara-ai-pivot-WULF.png" in text


def test_hostile_text_is_escaped_in_the_html(bundled, theses, tmp_path):
    db = copy_of(bundled, tmp_path / "hostile.db")
    add_document(db, "WULF", "2025-08-15", "hostile", [{
        "type": "contracted_compute", "commitment": "binding", "direction": "positive", "mw": 50,
        "counterparty": "<img src=x onerror=alert(3)>",
        "sentence": "<script>alert(1)</script> WULF signed a lease & more.",
    }], url="javascript:alert(2)")
    digest = build_digest(db, theses, W33)
    assert any("<script>" in m.sentence for m in company(digest, "WULF").moved)
    html = render_html(digest)
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; WULF signed a lease &amp; more." in html
    assert "— javascript:alert(2), 2025-08-15" in html and 'href="javascript:' not in html  # shown, never a link
    assert "<script>alert(1)</script>" in render_text(digest)  # plain text shows it as typed
    db.close()


def test_digest_message_carries_text_charts_and_the_cid_html(w33, rendered):
    message = digest_message(w33, rendered)
    assert (message.kind, message.key, message.subject) == ("digest", "digest-2025-W33",
                                                            "Weekly thesis digest 2025-W33")
    assert message.text == rendered.text_path.read_text(encoding="utf-8")
    images = [a for a in message.attachments if a.content_type == "image/png"]
    assert len(images) == len(rendered.chart_paths) and all(a.data.startswith(PNG_MAGIC) for a in images)
    html = digest_html(message)
    assert html is not None
    for image in images:
        assert f'src="cid:{image.content_id}"' in html and image.content_id.endswith("@catalyst-monitor")
    assert not any(f'src="{p.name}"' in html for p in rendered.chart_paths)
    assert "WULF" in summary_text(w33) and len(summary_text(w33)) < 3000


def test_a_chart_with_no_data_is_still_a_png(tmp_path):
    path = scorecard_chart([], [], "nothing yet", tmp_path / "empty.png")
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_the_email_channel_can_build_the_digest_message(w33, rendered):
    from monitor.notify.email import EmailSettings, build_message

    mail = build_message(digest_message(w33, rendered),
                         EmailSettings(host="localhost", sender="monitor@example.com", recipients=["pm@example.com"]))
    inline = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert len(inline) == len(rendered.chart_paths) and all(p["Content-ID"].endswith("@catalyst-monitor>")
                                                            for p in inline)


def test_each_company_card_carries_its_market_view_line(tmp_path):
    from monitor.fetch.replay import ReplayPlan, replay_samples
    from monitor.market.replay import replay_market
    from monitor.notify.digest import build_digest, iso_week_bounds
    from monitor.score.thesis import load_theses

    db = store.open_db(tmp_path / "m.db")
    replay_samples(db, ReplayPlan(SAMPLES, {"WULF"}))
    extract_pending(db, Extractor.from_paths(RULES, MODEL))
    replay_market(db, SAMPLES / "market")
    digest = build_digest(db, load_theses(ROOT / "rules" / "theses"), iso_week_bounds("2025-W33")[1])
    wulf = next(c for c in digest.companies() if c.ticker == "WULF")
    assert wulf.market_view.startswith("market view (ibit, 60 days): beta ")
    db.close()


def test_a_card_leads_with_the_weeks_ledger_changes_in_units(w33):
    wulf = company(w33, "WULF")
    [signed] = [d for d in wulf.deal_changes if d.event == "signed" and "Fluidstack" in d.headline]
    assert "200 MW" in signed.headline and "$3.70bn" in signed.headline and signed.url.startswith("https://")
    assert "Contracted, in force" in wulf.units and "200 MW" in wulf.units
    html, text = render_html(w33), render_text(w33)
    assert html.index("Deal ledger this week") < html.index("Pillars")
    assert "with Fluidstack at Lake Mariner signed: 200 MW" in text


# --- issue 14.9: the scheduled digest goes through the outbox, and a missed week is caught up ------------


def test_a_missed_digest_is_caught_up_on_start_and_retried_through_the_outbox(tmp_path, monkeypatch):
    """Issue 14.9: a 503 at the scheduled minute was never retried, and a daemon down then skipped the week."""
    import time

    from monitor.health import check_health
    from monitor.pipeline import build_runtime, job_deliver, job_digest
    from monitor.runs import record_start
    from tests.conftest import make_config
    from tests.receivers import Answer, WebhookReceiver

    config = make_config(tmp_path, monitor={"theses_dir": str(ROOT / "rules" / "theses")},
                         notify={"channels": ["slack"], "batch_window_minutes": 0, "retry_base_seconds": 1,
                                 "digest_dir": str(tmp_path / "digests")})
    rt = build_runtime(config, mode="offline")
    db = store.open_db(rt.db_path)
    assert job_digest(rt) is None  # no daemon ran before the last digest moment: nothing was missed
    record_start(rt.db_path, "daemon", offline=True)  # a daemon started long ago, then was down at the minute
    with store.transaction(db, "runs"):
        db.execute("update runs set started_at = '2000-01-01T00:00:00+00:00'")
    with WebhookReceiver() as hook:
        hook.script(Answer(503))
        monkeypatch.setenv("MONITOR_SLACK_WEBHOOK", hook.url + "/services/T9/B9/SECRETdigest")
        week = job_digest(rt)  # what a daemon start runs
        assert week is not None and job_digest(rt) is None  # queued once, whatever restarts follow
        first = job_deliver(rt)
        assert first.retrying == 1 and check_health(db, config).queued == 1
        time.sleep(2.1)  # the backoff of retry_base_seconds
        second = job_deliver(rt)
        accepted = hook.unique_keys()
    assert second.sent == 1 and accepted == [f"digest-{week}"]
    assert (tmp_path / "digests" / f"digest-{week}.html").is_file()
    db.close()


def test_the_last_complete_week_is_read_in_the_digests_time_zone():
    """Issue 15.7: the digest built the wrong week when digest_timezone was ahead of UTC (date.today())."""
    from datetime import UTC, datetime

    from monitor.config import NotifySettings
    from monitor.notify.weekly import current_week_end

    sunday_evening_utc = datetime(2025, 8, 17, 20, 0, tzinfo=UTC)  # Monday 08:00 in Auckland
    assert current_week_end(NotifySettings(digest_timezone="Pacific/Auckland"), sunday_evening_utc) == date(2025, 8, 17)
    assert current_week_end(NotifySettings(digest_timezone="UTC"), sunday_evening_utc) == date(2025, 8, 10)


def test_the_market_view_reads_the_configured_market_lens(bundled, theses):
    """Issue 15.7: the digest ignored [market_lens] (factor, windows)."""
    from monitor.config import MarketLensSettings

    btc = build_digest(bundled, theses, W33, market_lens=MarketLensSettings(factor="btc", windows=[90, 120]))
    assert company(btc, "WULF").market_view.startswith("market view (btc, 90 days)")


# --- issue 15.7: `monitor digest --send` goes through the outbox too --------------------------------------


def slack_config(tmp_path):
    """A config watching MARA with Slack as its one channel (its webhook comes from the environment)."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[monitor]\nrules_dir = "{RULES}"\nmodel_path = "{MODEL}"\ntheses_dir = "{ROOT / "rules" / "theses"}"\n'
        f'[sec]\ntickers_file = "{ROOT / "data" / "company_tickers.json"}"\n'
        f'[notify]\nchannels = ["slack"]\ndigest_dir = "{tmp_path / "digests"}"\n'
        '[[companies]]\nticker = "MARA"\n', encoding="utf-8")
    return config


def send_week_33(config, db_path):
    from typer.testing import CliRunner

    from monitor.cli import app

    return CliRunner().invoke(app, ["--config", str(config), "--db", str(db_path), "digest", "--week", "2025-W33",
                                    "--send"])


def test_digest_send_that_fails_stays_in_the_outbox_and_a_later_send_delivers_it_once(tmp_path, monkeypatch,
                                                                                       replayed_db):
    """A 503 from Slack used to be printed and forgotten; now the week waits in the outbox for a retry."""
    from tests.receivers import Answer, WebhookReceiver

    config = slack_config(tmp_path)

    def send() -> object:
        return send_week_33(config, replayed_db)

    with WebhookReceiver() as hook:
        monkeypatch.setenv("MONITOR_SLACK_WEBHOOK", hook.url + "/services/T9/B9/SECRETdigest")
        hook.script(Answer(503))
        failed = send()
        db = store.open_db(replayed_db)
        [row] = db.execute("select attempts, last_error from outbox where kind = 'digest' and week = '2025-W33'").fetchall()
        db.close()
        delivered = send()
        accepted = hook.unique_keys()

    assert failed.exit_code == 1 and "slack: not sent, retried from" in failed.stdout and "503" in failed.stdout
    assert row[0] == 1 and "503" in row[1]
    assert delivered.exit_code == 0 and "slack: sent" in delivered.stdout
    assert accepted == ["digest-2025-W33"]
    assert "SECRETdigest" not in failed.stdout + delivered.stdout


# --- what the screenshot of the digest showed -----------------------------------------------------------


def test_a_disclosure_read_into_a_deal_says_so_instead_of_counting_in_nothing(w33):
    """WULF's core Fluidstack sentences (the $3.7bn, the 10 years) moved no pillar by themselves and were shown
    as "counts in no pillar of this thesis", while the units above them counted them through the ledger."""
    wulf = company(w33, "WULF")
    read_into_deals = [m for m in wulf.moved if not m.pillars and m.deal]

    assert read_into_deals and all(m.deal.endswith("with Fluidstack at Lake Mariner") for m in read_into_deals)
    assert "with Fluidstack at Lake Mariner (counted in the units above)" in render_text(w33)


def test_a_market_series_that_stopped_is_shown_with_its_last_day_not_left_out(bundled, theses):
    """The bundled BTC series ends on 2025-09-10; the backdrop of a November week left BTC out altogether."""
    november = build_digest(bundled, theses, iso_week_bounds("2025-W47")[1])
    [btc] = [m for m in november.market if m.series == "btc_usd"]

    assert btc.stale and btc.day == date(2025, 9, 10) and btc.change_pct is None
    assert "no data since 2025-09-10" in render_text(november)


def test_digest_send_without_the_webhook_is_a_configuration_error_and_queues_nothing(tmp_path, monkeypatch,
                                                                                     replayed_db):
    monkeypatch.delenv("MONITOR_SLACK_WEBHOOK", raising=False)

    result = send_week_33(slack_config(tmp_path), replayed_db)

    db = store.open_db(replayed_db)
    queued = db.execute("select count(*) from outbox where kind = 'digest'").fetchone()[0]
    db.close()
    assert result.exit_code == 2 and "MONITOR_SLACK_WEBHOOK" in result.output and queued == 0
