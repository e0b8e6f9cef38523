"""Every time a card shows is written "HH:MM UTC", so a time the EHR sends with an offset is shown as the same
instant in UTC (a European EHR sends 16:30+02:00 for 14:30 UTC; it was shown as "16:30 UTC", in the future)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cql_equivalents.fhir_values import parse_instant
from tests.support import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"


def test_a_value_sent_with_an_offset_is_shown_at_its_utc_time(client):
    sent = (datetime.now(timezone(timedelta(hours=2))) - timedelta(minutes=30)).replace(second=0, microsecond=0)
    record = {**f.spo2(86), "effectiveDateTime": sent.isoformat()}
    response = client.post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis(), record]))
    assert response.status_code == 200
    details = "\n".join(card["detail"] for card in response.json["cards"])
    in_utc = sent.astimezone(timezone.utc)
    assert f"| SpO2 | 86 % | {in_utc:%Y-%m-%d %H:%M} UTC |" in details
    assert f"{sent:%Y-%m-%d %H:%M} UTC" not in details
    assert "dated in the future" not in details


def test_every_parsed_time_is_utc():
    assert parse_instant("2026-12-01T16:30:00+02:00") == datetime(2026, 12, 1, 14, 30, tzinfo=timezone.utc)
    assert parse_instant("2026-12-01T16:30:00+02:00").utcoffset() == timedelta(0)
    assert parse_instant("2026-12-01T16:30:00-05:00").hour == 21
    assert parse_instant("2026-12-01").tzinfo is timezone.utc


def test_when_writes_every_minute_as_the_format_spec_would():
    """markdown.when writes two digits from a table: every month, day, hour and minute, and a year below 1000
    padded to four digits, exactly as `:04d` / `:02d` write them."""
    from hooks.cards.markdown import when

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    moments = [start + timedelta(minutes=7 * step) for step in range(0, 60_000)]  # ~290 days: every field value
    moments += [datetime(year, 2, 28, 23, 59, tzinfo=timezone.utc) for year in (1, 9, 10, 99, 100, 999, 1000, 9999)]
    moments.append(datetime(2026, 12, 1, 16, 30, tzinfo=timezone(timedelta(hours=2))))
    for moment in moments:
        utc = moment.astimezone(timezone.utc)
        assert when(moment) == (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} {utc.hour:02d}:{utc.minute:02d} UTC")
    assert when(datetime(2026, 12, 1, 16, 30, tzinfo=timezone(timedelta(hours=2)))) == "2026-12-01 14:30 UTC"
    assert when(None) == "time not recorded"
