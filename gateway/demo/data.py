"""Deterministic demo data for both upstream APIs, generated from one seed.

v2 cases have the shape of the v2 reference's sample response; v1 cases the shape in the design.
Links follow the design: a v1 case's "Tines case" reference holds its v2 `case_id`, a v2 case's
`metadata.trackops_case_id` holds its v1 `id`. The data is built to exercise the gateway: nulls for
every nullable field somewhere, dangling linked cases, v1 cases pointing at missing v2 cases, a busy
assignee, series with several instances, cases created today and yesterday.

A v2 case is stored as its response object except `url` (a path here: the base URL comes from the
request) and `activities_meta`/`records_meta` (built per request); the full activity and record lists
and the fields no response shows (subscribers, notes) sit beside it in `CaseData`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

DEMO_NOW = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
V2_CASES = 300
EMBEDDED = 20  # activities and record results embedded in a case (its first page)

TEAMS = [(276, "Detection & Response"), (277, "Fraud"), (278, "IT Operations"), (279, "Compliance")]
FIRST_NAMES = [
    "Ava",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Felix",
    "Grace",
    "Hugo",
    "Iris",
    "Jon",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Uma",
    "Victor",
    "Wen",
    "Xavier",
    "Yara",
    "Zane",
    "Amir",
    "Bea",
    "Cole",
    "Dana",
]
LAST_NAMES = ["Nguyen", "Okafor", "Silva", "Kowalski", "Haddad", "Larsen", "Ito", "Moreau", "Patel", "Reyes"]
TAGS = [
    "phishing",
    "malware",
    "ransomware",
    "insider",
    "vip",
    "false-positive",
    "escalated",
    "cloud",
    "endpoint",
    "network",
    "identity",
    "data-loss",
    "compliance",
    "fraud",
    "needs-review",
]
SUB_STATUSES = {
    "OPEN": [(1, "To do"), (2, "In progress"), (3, "Waiting on customer")],
    "CLOSED": [(4, "Resolved"), (5, "False positive")],
}
PRIORITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]
CASE_INPUTS = [(1, "company", "Company"), (2, "host_name", "Host name"), (3, "version", "Version")]
COMPANIES = ["Tines", "Acme", "Globex", "Initech"]
TOPICS = [
    "Suspicious login",
    "Phishing report",
    "Malware alert",
    "Data exfiltration",
    "Privilege escalation",
    "Impossible travel",
    "Unusual API usage",
    "Lost laptop",
    "Vendor breach notice",
    "Payment fraud",
]
HOSTS = ["web-01", "db-02", "laptop-ava", "vpn-gw", "mail-relay", "ci-runner", "hr-portal", "edge-03"]
COMMENTS = [
    "Looking into it",
    "Escalating to on-call",
    "Confirmed benign",
    "Reset the user's password",
    "Blocked the sender domain",
    "Isolated the host",
    "Waiting on the vendor",
    "Closing as duplicate",
]
NOTES = ["Root cause: reused password", "Customer notified", "Legal hold requested", "Forensic image taken"]
RECORD_TYPES = [(54, "Alert"), (55, "Enrichment"), (56, "Containment")]
STORIES = ["Alert investigation", "IP enrichment", "Host isolation", "User lookup", "Hash reputation"]
VERDICTS = ["malicious", "benign", "suspicious", "unknown"]

# v1 reference data
CLIENTS = [
    (12, "Acme Insurance"),
    (13, "Globex Mutual"),
    (14, "Initech Benefits"),
    (15, "Umbrella Health"),
    (16, "Stark Casualty"),
    (17, "Wayne Assurance"),
]
LOCATIONS = [(31, "Denver Office"), (32, "Austin Office"), (33, "Boston Office"), (34, "Remote")]
REGIONS = [(4, "West"), (5, "Central"), (6, "East")]
V1_STATUSES = [(1, "New"), (2, "In Progress"), (3, "On Hold"), (4, "Closed")]
CASE_TYPES = [  # (id, name, reference labels); the "Tines case" label sits at each position in turn
    (3, "Workers Comp", ["Claim number", "Tines case", None]),
    (4, "Security Incident", ["Tines case", None, None]),
    (5, "Fraud Review", ["Policy number", "Claim number", "Tines case"]),
    (6, "Background Check", ["Applicant id", None, None]),
    (7, "Surveillance", None),
]
LINKED_TYPES = CASE_TYPES[:3]
UNLINKED_TYPES = CASE_TYPES[3:]
PEOPLE = [(5, "Sam Ortiz"), (6, "Lee Park"), (7, "Ana Costa"), (8, "Raj Mehta"), (9, "Kim Berg")]
CONTACTS = [(77, "Dana Reyes"), (78, "Omar Haddad"), (79, "Lena Voss"), (80, "Piotr Nowak")]
SUBJECTS = [(901, "John Doe"), (902, "Jane Roe"), (903, "Max Mustermann"), (904, "Erika Musterfrau")]

TINES = {
    "user_id": "100",
    "first_name": "Tines",
    "last_name": None,
    "email": None,
    "avatar_url": None,
    "is_service_account": True,
}


@dataclass(frozen=True)
class TokenGrant:
    """What a demo token may see: the user it acts as and the teams it can read."""

    user_id: str
    team_ids: frozenset[int]


@dataclass
class CaseData:
    case: dict[str, Any]  # the response object, `url` as a path, without the *_meta objects
    activities: list[dict[str, Any]]
    record_results: list[tuple[int, str, dict[str, Any]]]  # (record type id, type name, record result)
    subscribers: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


@dataclass
class DemoData:
    users: list[dict[str, Any]]
    cases: dict[int, CaseData]
    legacy: dict[int, dict[str, Any]]
    tokens: dict[str, TokenGrant]


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ref(pair: tuple[int, str] | None) -> dict[str, Any] | None:
    return None if pair is None else {"id": pair[0], "name": pair[1]}


def _users(rng: random.Random) -> list[dict[str, Any]]:
    users = []
    for n, first in enumerate(FIRST_NAMES):
        last = LAST_NAMES[n % len(LAST_NAMES)]
        users.append(
            {
                "user_id": str(168 + n),
                "first_name": first,
                "last_name": None if n == 29 else last,
                "email": f"{first.lower()}.{last.lower()}@example.com",
                "avatar_url": rng.choice(["", f"https://avatars.example.com/{168 + n}.png", None]),
                "is_service_account": False,
            }
        )
    return users


def _created_at(rng: random.Random, case_id: int) -> datetime:
    if case_id % 25 == 0:  # some created today (before DEMO_NOW), some yesterday
        return DEMO_NOW.replace(hour=0, minute=0, second=0) + timedelta(
            seconds=rng.randint(0, 12 * 3600 - 60)
        )
    if case_id % 25 == 1:
        return DEMO_NOW.replace(hour=0, minute=0, second=0) - timedelta(seconds=rng.randint(60, 86399))
    return DEMO_NOW - timedelta(seconds=rng.randint(2 * 86400, 500 * 86400))


def _sla(rng: random.Random, sla_type: str) -> dict[str, Any]:
    total = rng.choice([3600, 4 * 3600, 24 * 3600, 72 * 3600])
    percent = rng.choice([0, 10, 35, 60, 74, 75, 80, 90, 99, 100, 120, 250])
    elapsed = total * percent // 100
    return {
        "remaining_time_seconds": None if rng.random() < 0.05 else max(total - elapsed, 0),
        "current_time_seconds": elapsed,
        "percent_elapsed": percent,
        "exceeded": percent >= 100,
        "sla_type": sla_type,
    }


def _v2_case(rng: random.Random, case_id: int, users: list[dict[str, Any]], ids: dict[str, int]) -> CaseData:
    created = _created_at(rng, case_id)
    team_id, _ = team = TEAMS[rng.randrange(len(TEAMS))]
    status = "CLOSED" if rng.random() < 0.35 else "OPEN"
    opened = None if rng.random() < 0.1 else min(created + timedelta(minutes=rng.randint(0, 600)), DEMO_NOW)
    resolved = None
    if status == "CLOSED":
        start = opened or created
        resolved = min(start + timedelta(hours=rng.randint(1, 24 * 30)), DEMO_NOW - timedelta(minutes=5))
        resolved = max(resolved, start)
    last = max(m for m in (created, opened, resolved) if m is not None)
    updated = min(last + timedelta(minutes=rng.randint(0, 60 * 24 * 20)), DEMO_NOW)

    busy = users[0]  # the demo token's user: on about a third of the cases
    assignees = rng.sample(users[1:], rng.choice([0, 1, 1, 2, 2, 3]))
    if rng.random() < 0.34:
        assignees.insert(0, busy)
    author = TINES if rng.random() < 0.2 else (None if rng.random() < 0.04 else rng.choice(users))
    tags = [
        {"id": 7 + i, "name": TAGS[i]}
        for i in sorted(rng.sample(range(len(TAGS)), rng.choice([0, 1, 2, 2, 3, 4])))
    ]

    activities = []
    for n in range(rng.randint(1, 45)):
        ids["activity"] += 1
        kind = (
            "CREATED"
            if n == 0
            else rng.choice(["COMMENTED", "COMMENTED", "ASSIGNED", "STATUS_CHANGED", "TAGGED"])
        )
        value = {
            "CREATED": str(case_id),
            "COMMENTED": rng.choice(COMMENTS),
            "ASSIGNED": rng.choice(users)["user_id"],
            "STATUS_CHANGED": rng.choice(["OPEN", "CLOSED"]),
            "TAGGED": rng.choice(TAGS),
        }[kind]
        activities.append(
            {
                "id": ids["activity"],
                "activity_type": kind,
                "value": None if kind == "TAGGED" and rng.random() < 0.2 else value,
                "user": None if rng.random() < 0.05 else (author if n == 0 and author else rng.choice(users)),
                "created_at": stamp(min(created + timedelta(minutes=7 * n), DEMO_NOW)),
            }
        )

    record_results = []
    for _ in range(rng.choice([0, 0, 2, 5, 12, 21, 30])):
        ids["record"] += 1
        type_id, type_name = rng.choice(RECORD_TYPES)
        rid = ids["record"]
        moment = stamp(min(created + timedelta(minutes=rng.randint(0, 600)), DEMO_NOW))
        record_results.append(
            (
                type_id,
                type_name,
                {
                    "id": rid,
                    "results": [
                        {"id": rid * 1000 + 1, "name": "Timestamp", "value": moment},
                        {"id": rid * 1000 + 2, "name": "Story name", "value": rng.choice(STORIES)},
                        {
                            "id": rid * 1000 + 3,
                            "name": "Verdict",
                            "value": None if rng.random() < 0.1 else rng.choice(VERDICTS),
                        },
                    ],
                    "created_at": None if rng.random() < 0.03 else moment,
                },
            )
        )

    linked = []
    for other in sorted(rng.sample(range(1, V2_CASES + 1), rng.choice([0, 0, 0, 1, 1, 2]))):
        if other != case_id:
            linked.append({"case_id": other, "name": None})  # names filled once all cases exist
    if case_id % 9 == 0:
        linked.append({"case_id": case_id + 1000, "name": f"Deleted case {case_id + 1000}"})

    slas = [_sla(rng, kind) for kind in rng.sample(["resolution", "response"], rng.choice([0, 1, 2, 2]))]
    fields = []
    for input_id, key, label in rng.sample(CASE_INPUTS, rng.randint(0, 3)):
        ids["field"] += 1
        value = {
            "company": rng.choice(COMPANIES),
            "host_name": rng.choice(HOSTS),
            "version": rng.choice(["1.0", "2.0", "2.1"]),
        }[key]
        fields.append(
            {
                "id": ids["field"],
                "value": None if rng.random() < 0.05 else value,
                "case_input": {"id": input_id, "key": key, "name": label},
            }
        )
    tasks = []
    for n in range(rng.choice([0, 0, 1, 2])):
        ids["task"] += 1
        task_moment = stamp(min(created + timedelta(hours=n + 1), DEMO_NOW))
        tasks.append(
            {
                "id": ids["task"],
                "description": None
                if rng.random() < 0.1
                else rng.choice(["Review security logs", "Contact affected users", "Rotate credentials"]),
                "completed": rng.random() < 0.4,
                "assignees": [{"id": u["user_id"]} for u in rng.sample(users[:6], rng.randint(0, 2))],
                "created_at": task_moment,
                "updated_at": None if rng.random() < 0.2 else task_moment,
            }
        )
    blocks = []
    for n in range(rng.choice([0, 1, 2])):
        elements = [rng.randint(1, 999) for _ in range(rng.randint(1, 3))]
        blocks.append(
            {
                "id": n + 1,
                "block_type": rng.choice(["note", "file", "records"]),
                "elements": [{"element_id": e, "id": e} for e in elements],
            }
        )
    metadata: dict[str, Any] | None = {"source": rng.choice(["siem", "email", "edr", "manual"])}
    if rng.random() < 0.08:
        metadata = None if rng.random() < 0.5 else {}
    sub = rng.choice(SUB_STATUSES[status]) if rng.random() > 0.05 else None
    case = {
        "case_id": case_id,
        "name": f"{rng.choice(TOPICS)} on {rng.choice(HOSTS)}",
        "description": None
        if rng.random() < 0.3
        else f"Raised by {rng.choice(['the SIEM', 'a user report', 'EDR', 'the fraud model'])}.",
        "status": status,
        "sub_status": _ref(sub),
        "priority": None if rng.random() < 0.03 else rng.choice(PRIORITIES),
        "url": f"/team/{team_id}/cases/{case_id}",
        "metadata": metadata,
        "author": author,
        "opened_by": None if opened is None or rng.random() < 0.3 else rng.choice(users),
        "resolved_by": None if resolved is None or rng.random() < 0.2 else rng.choice(users),
        "assignees": assignees,
        "tags": tags,
        "sla": slas[0] if slas else None,
        "slas": slas,
        "activities": activities[:EMBEDDED],
        "team": _ref(team),
        "linked_cases": linked,
        "closure_conditions": []
        if rng.random() < 0.6
        else [
            {
                "formula": "=SIZE(team_case.assignees) > 2",
                "name": None if rng.random() < 0.3 else "Number of assignees",
            }
        ],
        "opened_at": stamp(opened) if opened else None,
        "resolved_at": stamp(resolved) if resolved else None,
        "created_at": stamp(created),
        "updated_at": None if case_id % 97 == 0 else stamp(updated),
        "records": group_records(record_results[:EMBEDDED]),
        "actions": [
            {
                "id": case_id * 10 + n,
                "url": f"https://runbooks.example.com/{case_id}/{n}",
                "label": rng.choice(["Open runbook", "Block IP", "Notify owner"]),
                "action_type": rng.choice(["page", "webhook"]),
            }
            for n in range(rng.choice([0, 0, 1, 2]))
        ],
        "fields": fields,
        "blocks": blocks,
        "tasks": tasks,
    }
    subscribers = {u["user_id"] for u in rng.sample(users[:8], rng.randint(0, 3))}
    notes = rng.sample(NOTES, rng.randint(0, 2))
    return CaseData(case, activities, record_results, subscribers, notes)


def group_records(results: list[tuple[int, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Record results grouped by record type, as the v2 API shows them (types in first-seen order)."""
    groups: dict[int, dict[str, Any]] = {}
    for type_id, type_name, result in results:
        group = groups.setdefault(
            type_id,
            {"record_type_id": type_id, "record_type_name": type_name, "record_type_record_results": []},
        )
        group["record_type_record_results"].append(result)
    return list(groups.values())


def _legacy(
    rng: random.Random, v1_id: int, v2: dict[str, Any] | None, v2_target: int | None, series: tuple[int, int]
) -> dict[str, Any]:
    created = (
        datetime.fromisoformat(v2["created_at"])
        if v2
        else DEMO_NOW - timedelta(seconds=rng.randint(86400, 400 * 86400))
    )
    created_on = (created + timedelta(days=rng.choice([0, 0, 0, -1]))).date()
    if v2_target is not None:
        type_id, type_name, labels = rng.choice(LINKED_TYPES)
    else:
        type_id, type_name, labels = rng.choice(UNLINKED_TYPES)
    refs: list[str | None] = [None, None, None]
    for position, label in enumerate(labels or []):
        if label == "Tines case":
            refs[position] = str(v2_target)
        elif label is not None:
            refs[position] = (
                None if rng.random() < 0.1 else f"{label[:3].upper()}-{rng.randint(10000, 99999)}"
            )
    number, instance = series

    def maybe(pairs: list[tuple[int, str]], none: float = 0.1) -> dict[str, Any] | None:
        return None if rng.random() < none else _ref(rng.choice(pairs))

    status = V1_STATUSES[3] if v2 and v2["status"] == "CLOSED" else rng.choice(V1_STATUSES[:3])
    return {
        "id": v1_id,
        "case_number": f"{created_on:%y}-{number:05d}-{instance:02d}",
        "series_number": number,
        "series_instance": instance,
        "client": maybe(CLIENTS, 0.05),
        "location": maybe(LOCATIONS),
        "case_region": maybe(REGIONS),
        "case_status": None if rng.random() < 0.03 else _ref(status),
        "case_type": None
        if labels is None and rng.random() < 0.5
        else {"id": type_id, "name": type_name, "reference_labels": labels},
        "is_request": rng.random() < 0.25,
        "created_on": created_on.isoformat(),
        "created_at": stamp(created),
        "due_on": None
        if rng.random() < 0.2
        else (created_on + timedelta(days=rng.choice([7, 14, 30]))).isoformat(),
        "updated_at": stamp(min(created + timedelta(hours=rng.randint(1, 24 * 40)), DEMO_NOW)),
        "primary_contact": maybe(CONTACTS, 0.2),
        "primary_investigator": maybe(PEOPLE),
        "primary_manager": maybe(PEOPLE, 0.2),
        "primary_salesperson": maybe(PEOPLE, 0.5),
        "primary_subject": maybe(SUBJECTS, 0.3),
        "reference_value_1": refs[0],
        "reference_value_2": refs[1],
        "reference_value_3": refs[2],
    }


def generate(seed: int = 7) -> DemoData:
    rng = random.Random(seed)
    users = _users(rng)
    ids = {"activity": 100, "record": 50, "field": 0, "task": 0}
    cases = {n: _v2_case(rng, n, users, ids) for n in range(1, V2_CASES + 1)}
    for data in cases.values():
        for ref in data.case["linked_cases"]:
            if ref["case_id"] in cases:
                ref["name"] = cases[ref["case_id"]].case["name"]

    # v1: a twin for about 90% of the v2 cases, 30 cases of their own, 6 pointing at missing v2 cases.
    twins = [n for n in cases if rng.random() < 0.9]
    entries: list[int | None] = [*twins, *([None] * 30)]
    rng.shuffle(entries)
    for position, missing in zip((5, 60, 140, 210, 290, 300), range(5001, 5007), strict=True):
        entries.insert(position, -missing)
    legacy: dict[int, dict[str, Any]] = {}
    series_number = 0
    previous: dict[str, Any] | None = None
    for offset, entry in enumerate(entries):
        v1_id = 1001 + offset
        if previous is not None and rng.random() < 0.12:  # a re-opened case: same series, next instance
            series = (previous["series_number"], previous["series_instance"] + 1)
        else:
            series_number += 1
            series = (series_number, 1)
        v2 = cases[entry].case if entry is not None and entry > 0 else None
        target = None if entry is None else abs(entry)
        legacy[v1_id] = previous = _legacy(rng, v1_id, v2, target, series)
        if v2 is not None:
            v2["metadata"] = {**(v2["metadata"] or {}), "trackops_case_id": str(v1_id)}
    for case_id in [n for n in cases if n not in set(twins)][:2]:  # v2 cases pointing at a missing v1 case
        meta = cases[case_id].case["metadata"] or {}
        cases[case_id].case["metadata"] = {**meta, "trackops_case_id": "99999"}

    all_teams = frozenset(team_id for team_id, _ in TEAMS)
    tokens = {
        "demo-token": TokenGrant(users[0]["user_id"], all_teams),
        "demo-token-2": TokenGrant(users[1]["user_id"], frozenset({TEAMS[0][0]})),
    }
    return DemoData(users, cases, legacy, tokens)


def parse_moment(text: str, end_of_day: bool = False) -> datetime:
    """An ISO 8601 timestamp (UTC when no offset); a bare date is its start (or end) of day."""
    if len(text) == 10:
        day = date.fromisoformat(text)
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return moment + timedelta(days=1, microseconds=-1) if end_of_day else moment
    moment = datetime.fromisoformat(text.replace(" ", "T"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
