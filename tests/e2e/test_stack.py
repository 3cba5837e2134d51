"""`kinship dev up`, `kinship demo`, `kinship dev down`: a campaign from petition to alert."""

from __future__ import annotations

import json
import re
import urllib.request

import psutil
import pytest

from tests.e2e.conftest import Stack, kinship

pytestmark = pytest.mark.slow
SERVICES = ("campaigns", "petitions", "notifications")


def test_up_prints_the_docs_urls_and_logs(stack: Stack) -> None:
    out = stack.up.stdout
    for name in SERVICES:
        assert f"{stack.url(name)}/api/v1/docs" in out
        with urllib.request.urlopen(f"{stack.url(name)}/readyz", timeout=5) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"{stack.url(name)}/api/v1/openapi.json", timeout=5) as resp:
            assert json.load(resp)["openapi"].startswith("3.")
    assert f"{stack.var}/log" in out
    assert "email: capture, SMS: capture" in out


def test_up_again_is_harmless(stack: Stack) -> None:
    before = stack.handle().pids()
    again = kinship(stack.env, "dev", "up")
    assert again.returncode == 0, again.stderr
    assert "starting" not in again.stdout.replace("Starting Kinship", "")
    assert stack.handle().pids() == before


def test_status_shows_every_part_ready(stack: Stack) -> None:
    status = kinship(stack.env, "dev", "status")
    assert status.returncode == 0, status.stdout
    for part in ("kafka", *(f"{s}-api" for s in SERVICES), *(f"{s}-worker" for s in SERVICES)):
        assert re.search(rf"^{part}\s+running \(pid \d+\)", status.stdout, re.M), status.stdout
    assert status.stdout.count(" ready ") == 3


def test_demo_takes_a_campaign_from_petition_to_delivered_alert(stack: Stack) -> None:
    demo = kinship(stack.env, "demo", "--quiet", "--timeout", "180")
    out = demo.stdout
    assert demo.returncode == 0, f"{out}\n{demo.stderr}"
    assert "Hapa Voices Collective (lead; mixed-Asian-heritage)" in out, out
    assert "Rainbow Lantern Alliance (partner; LGBTQ+)" in out, out
    # Five people, six submissions: the duplicate counts once.
    assert "Signatures: 5 counted from 6 submissions (1 duplicate" in out, out
    assert re.search(r"by locale:\s+en 3, zh-Hant 2", out), out
    assert re.search(r"by partner:\s+direct 2, rainbow-lantern-\w+ 3", out), out
    # Four email consents and one SMS opt-in: five deliveries, all sent.
    done = r"Alert:\s+\S+ done: total 5, sent 5, delivered 0, failed 0, suppressed 0"
    assert re.search(done, out), out
    # Five thank-yous and one "you had already signed"; the SMS welcome.
    assert re.search(r"email\s+alert 4, transactional 6", out), out
    assert re.search(r"sms\s+alert 1, transactional 1", out), out
    assert "with List-Unsubscribe" in out, out
    # The partner's endpoint got one signed delivery per signature it recruited; only the two
    # who ticked its box reach it with contact details (masked here), and never pronouns.
    assert "received 3 signed deliveries (Standard Webhooks signatures verified)" in out, out
    assert "signature.created x3" in out, out
    assert "discreet flags sent: 0" in out, out
    assert "contact details only for the 2 supporters who ticked its box" in out, out
    assert "@" in out and not re.search(r"[a-z]{2,}\.[a-z]+@demo-", out), out
    alert = re.search(r"kinship outbox --alert (\S+)", out)
    assert alert is not None
    listed = kinship(stack.env, "outbox", "--alert", alert.group(1), "--as-json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(r["channel"] for r in rows) == ["email"] * 4 + ["sms"]
    assert all("***" in r["to"] or "•" in r["to"] for r in rows)
    # Names and pronouns are personal data too: masked unless the operator asks.
    masked = sorted(r["subject"] for r in rows if r["channel"] == "email")
    assert masked[0] == "‹…›, a note for you" and "Mei" not in " ".join(masked), masked
    listed = kinship(stack.env, "outbox", "--alert", alert.group(1), "--as-json", "--show")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    # The alert's {{ given_name }}: each supporter's own name, in their language, by either channel.
    subjects = sorted(r["subject"] for r in rows if r["channel"] == "email")
    assert subjects == [
        "Alex, the county health board votes Thursday",
        "Mei, the county health board votes Thursday",
        "Sam, a note for you",  # discreet mode: the alert's discreet subject
        "怡君，縣衛生委員會星期四投票",
    ], subjects
    [sms] = [r for r in rows if r["channel"] == "sms"]
    assert sms["body"].startswith("Alex: the board votes Thursday"), sms
    # No key the demo issued outlives it, its platform admin key least of all.
    tag = re.search(r"rainbow-lantern-(\w+)", out)
    assert tag is not None
    check = ("keys", "create", "--org", "kinship-platform", "--role", "admin", "--name", "check")
    created = kinship(stack.env, *check)
    assert created.returncode == 0, created.stderr
    admin = created.stdout.strip().splitlines()[-1]
    run = tag.group(1)
    for org in (f"hapa-voices-{run}", f"rainbow-lantern-{run}", "kinship-platform"):
        request = urllib.request.Request(
            f"{stack.url('campaigns')}/api/v1/keys?organization={org}&per_page=100",
            headers={"Authorization": f"Bearer {admin}"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            active = [k["name"] for k in json.load(resp)["_embedded"]["api_keys"]]
        assert not [name for name in active if name and name.startswith("demo")], (org, active)


def test_dev_down_leaves_nothing_running(stack: Stack) -> None:
    pids = stack.handle().pids()
    assert len(pids) >= 7  # Kafka, three APIs (plus their gunicorn workers), three workers
    procs = [psutil.Process(pid) for pid in pids]  # each identified by its start time too
    down = kinship(stack.env, "dev", "down")
    assert down.returncode == 0, down.stderr
    assert "kafka" in down.stdout
    # A process killed last may take a moment to be gone; a zombie is gone but for its entry.
    _, left = psutil.wait_procs(procs, timeout=10)
    alive = [p.pid for p in left if _running(p)]
    assert alive == [], f"still running after down: {alive}"
    status = kinship(stack.env, "dev", "status")
    assert status.returncode == 3
    assert "running" not in status.stdout
    for name in SERVICES:
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{stack.url(name)}/healthz", timeout=2)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
