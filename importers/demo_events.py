"""A year of demo events for the demo city: where, when, what, through which channel, and how
far along the closed loop each one got.

:func:`demo_events_build` reads the stored city (addresses and their residents) and draws
every event with one ``numpy.random.default_rng(seed)`` in a fixed order, so a seed and an end
instant give the same events. :func:`demo_events_write` stores them in bulk: COPY into staging
tables, one INSERT per table, links by the polygon-driven join of
:mod:`layers.services.linking`, then :func:`layers.services.clusters.clusters_rebuild`.

The shape of the year:

* **where**: at a standard address drawn with weight = its residents (+1, so shops and empty
  buildings get some), jittered by ~25 m; a few *hot spot* communities have
  :data:`HOT_SPOT_FACTOR` times the rate of disputes (one set) or hazards (another set);
* **when**: a weekday carries :data:`WEEKDAY_FACTOR` times a weekend day; hours follow office
  life (peaks mid-morning and mid-afternoon), noise complaints the evening;
* **what**: category shares by month (:data:`SEASONS`): heating complaints Nov–Mar, floods
  Jul–Aug, noise in summer;
* **channels**: hotline largest, then the app, grid patrol, web; mediation and petitions carry
  disputes, drones spot hazards;
* **the closed loop**: each event follows a path (:data:`PATHS`: the usual one, or returned,
  suspended or reopened on the way) with step times drawn around its SLA; its status is where
  the path stands at ``end``, so old events are closed and recent ones open, and those whose
  resolution outlasts the SLA are escalated at the deadline (overdue if still open). A few recent
  reports from the hotline and the web carry only an address the geocoder could not place
  (``needs_location``). Every status is guaranteed at any scale: a status no event reached is
  given to an event whose path passes it, stopped there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

#: Events per 1,000 residents per year (Lanzhou: ~1 M events a year for ~4.4 M people, of which
#: a demo district's share, thinned so the demo loads in seconds).
RATE_PER_1000 = 70.0
HOT_SPOT_FACTOR = 4.0
WEEKDAY_FACTOR = 1.6
EXTERNAL_PREFIX = "DEMO-"
ACTOR = "demo"

#: (category code, yearly weight, description templates).
CATEGORIES = (
    ("dispute.neighbour", 9, ("楼上漏水引发邻里矛盾", "邻居长期占用公共楼道", "相邻住户因装修噪音发生争执")),
    ("dispute.family", 3, ("夫妻因家庭琐事发生争吵，请求调解", "赡养老人问题引发家庭纠纷")),
    ("dispute.property", 8, ("物业费收取标准不透明", "物业公司不作为，小区管理混乱", "车位被物业擅自出租")),
    ("dispute.labour", 4, ("工地拖欠工资三个月", "公司欠薪，员工讨薪无门")),
    ("dispute.land", 1, ("宅基地边界有争议",)),
    ("dispute.contract", 2, ("装修合同纠纷，商家不退定金",)),
    ("hazard.fire", 6, ("楼道堆放杂物，堵塞消防通道", "电动车在楼道内充电，存在火灾隐患", "灭火器过期未更换")),
    ("hazard.gas", 3, ("楼内有煤气味，疑似燃气泄漏", "燃气管道老化锈蚀")),
    ("hazard.building", 2, ("外墙出现裂缝，担心房屋安全", "老旧楼房墙皮脱落")),
    ("hazard.road", 3, ("路口红绿灯故障", "人行道地砖破损易绊倒行人")),
    ("hazard.electricity", 3, ("小区电线私拉乱接", "配电箱门损坏，电线裸露")),
    ("hazard.food", 1, ("小区门口商店销售过期食品",)),
    ("hazard.flood", 1, ("暴雨后地下通道积水严重", "排水沟堵塞，雨天积水")),
    ("environment.garbage", 10, ("垃圾清运不及时，散发异味", "小区垃圾桶满溢无人清理")),
    ("environment.noise", 6, ("夜间广场舞噪音扰民", "施工噪音影响休息", "商铺音响噪声过大")),
    ("environment.pollution", 3, ("餐馆油烟直排扰民", "污水直排进入河道")),
    ("municipal.streetlight", 5, ("小区门口路灯不亮", "路灯损坏多日未修")),
    ("municipal.manhole", 3, ("井盖缺失，存在安全隐患", "井盖松动，车辆经过响声大")),
    ("municipal.water", 4, ("小区停水未提前通知", "自来水管爆管漏水")),
    ("municipal.heating", 6, ("暖气不热，室温不达标", "供暖期暖气管道漏水")),
    ("consultation", 4, ("咨询低保申请条件", "咨询老旧小区改造政策", "咨询居住证办理流程")),
    ("suggestion", 2, ("建议在小区增设健身器材", "建议增加公交线路")),
)

#: Month multipliers (Jan … Dec) on a category's weight.
SEASONS = {
    "municipal.heating": (6, 5, 3, 0.5, 0.05, 0.05, 0.05, 0.05, 0.1, 0.6, 4, 6),
    "hazard.flood": (0.1, 0.1, 0.2, 0.4, 1, 3, 10, 9, 2, 0.3, 0.1, 0.1),
    "environment.noise": (0.6, 0.6, 0.8, 1, 1.4, 2, 2.5, 2.5, 1.5, 1, 0.7, 0.6),
    "hazard.fire": (1.6, 1.5, 1.3, 1, 0.8, 0.7, 0.7, 0.7, 0.8, 1, 1.3, 1.6),
}

#: Channel shares per family (hotline, app, web, mediation, petition, grid_patrol, drone_patrol).
CHANNELS = ("hotline", "app", "web", "mediation", "petition", "grid_patrol", "drone_patrol")
CHANNEL_SHARES = {
    "dispute": (0.40, 0.15, 0.06, 0.20, 0.07, 0.12, 0.00),
    "hazard": (0.35, 0.20, 0.05, 0.00, 0.00, 0.30, 0.10),
    "default": (0.50, 0.25, 0.10, 0.00, 0.01, 0.13, 0.01),
}

#: Relative call volume per hour of day (0 … 23): office life, and evenings for noise.
HOURS = np.array([1, 0.5, 0.3, 0.3, 0.4, 0.8, 2, 4, 7, 9, 9, 8, 5, 6, 8, 8, 7, 6, 5, 4, 4, 3, 2, 1.5])
NOISE_HOURS = np.array([4, 3, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 4, 6, 8, 9, 8, 6])

#: Paths through the closed loop: (action, to_status) after ``receive``; ``escalate`` appears
#: only when the case outlasts its deadline. Path shares: PATH_SHARES.
S = {
    "triage": "triaged", "assign": "assigned", "accept": "in_progress", "resolve": "resolved",
    "verify": "verified", "close": "closed", "return": "returned", "suspend": "suspended",
    "resume": "in_progress", "reopen": "reopened", "escalate": None,
}  # fmt: skip
_HANDLING = ["triage", "assign", "accept", "escalate", "resolve"]
_CHECKS = ["verify", "close"]
PATHS = {
    "usual": _HANDLING + _CHECKS,
    "returned": _HANDLING + ["return", "assign", "accept", "resolve"] + _CHECKS,
    "suspended": ["triage", "assign", "accept", "suspend", "resume", "resolve"] + _CHECKS,
    "reopened": _HANDLING + _CHECKS + ["reopen", "assign", "accept", "resolve"] + _CHECKS,
}
PATH_SHARES = {"usual": 0.86, "returned": 0.06, "suspended": 0.03, "reopened": 0.05}
REASONS = {
    "return": "处置不到位，驳回重办",
    "suspend": "等待产权单位配合，暂时挂起",
    "resume": "条件具备，恢复办理",
    "reopen": "群众不满意，重新办理",
    "escalate": "超期自动升级 (overdue: escalated one level)",
}
#: Satisfaction 1 … 5 of rated cases (a reopened case's first rating is 1 or 2).
SATISFACTION = np.array([0.03, 0.05, 0.12, 0.30, 0.50])
LEVELS = ("community", "street", "district", "city")
STATUSES = ("received", "triaged", "assigned", "in_progress", "resolved", "verified", "closed", "returned",
            "suspended", "reopened")  # fmt: skip


class DemoEventsError(Exception):
    """The demo events cannot be generated (no city, or events already there)."""


@dataclass
class DemoEvents:
    events: pd.DataFrame
    transitions: pd.DataFrame
    hot_spots: dict[str, list[int]]


def _city() -> pd.DataFrame:
    from layers.services.bulk import fetch

    rows = fetch(
        """SELECT a.id, ST_X(a.location), ST_Y(a.location), a.full_text, coalesce(a.community_id, 0),
                  coalesce(p.n, 0)
           FROM layers_address a
           LEFT JOIN (SELECT address_id, count(*) AS n FROM layers_person GROUP BY address_id) p
             ON p.address_id = a.id
           WHERE a.location IS NOT NULL
           ORDER BY a.id"""
    )
    return pd.DataFrame(rows, columns=["id", "lon", "lat", "full_text", "community_id", "residents"])


def _taxonomy() -> tuple[pd.DataFrame, dict]:
    from layers.models import Category, SlaRule

    categories = pd.DataFrame(
        Category.objects.values_list("code", "id", "family", "department_id", "min_level"),
        columns=["code", "id", "family", "department_id", "min_level"],
    ).set_index("code")
    hours = {(r.family, r.level): r.hours for r in SlaRule.objects.all()}
    return categories, hours


def _draw(rng, weights: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with probability proportional to ``weights`` (inverse CDF, one uniform each)."""
    cumulative = np.cumsum(weights, dtype=float)
    return np.minimum(np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right"), len(weights) - 1)


def demo_events_build(*, seed: int, end: dt.datetime, days: int = 365, rate: float = RATE_PER_1000) -> DemoEvents:
    """Draw the events of the ``days`` before ``end`` for the stored city (see the module
    docstring); deterministic for (seed, end, city)."""
    rng = np.random.default_rng(seed)
    city = _city()
    if city.empty:
        raise DemoEventsError("no standard addresses: generate the demo city first (generate_demo_city)")
    categories, sla_hours = _taxonomy()
    codes = [code for code, _, _ in CATEGORIES]
    families = np.array([code.split(".")[0] for code in codes])
    total = max(int(round(city["residents"].sum() * rate / 1000 * days / 365)), 60)

    # When: a day (weekday-weighted), then an hour.
    start_day = (end - dt.timedelta(days=days)).date()
    day_list = pd.date_range(start_day, periods=days, freq="D")
    day_weights = np.where(day_list.dayofweek < 5, WEEKDAY_FACTOR, 1.0)
    day = _draw(rng, day_weights, total)
    months = day_list.month.to_numpy()[day] - 1

    # What: category by month.
    base = np.array([w for _, w, _ in CATEGORIES], dtype=float)
    season = np.array([SEASONS.get(code, (1,) * 12) for code in codes], dtype=float)  # categories × months
    category = np.empty(total, dtype=int)
    for month in range(12):
        chosen = months == month
        category[chosen] = _draw(rng, base * season[:, month], int(chosen.sum()))
    family = families[category]
    hours = np.where(
        np.array(codes)[category] == "environment.noise", _draw(rng, NOISE_HOURS, total), _draw(rng, HOURS, total)
    )
    minutes = rng.integers(0, 3600, total)
    local = day_list.to_numpy()[day] + (hours * 3600 + minutes).astype("timedelta64[s]")
    reported = pd.DatetimeIndex(local).tz_localize(timezone.get_current_timezone()).tz_convert("UTC")
    # The last day is cut at ``end``: a report after it would lie in the future.
    reported = reported.where(reported <= end, pd.Timestamp(end) - pd.to_timedelta(rng.integers(60, 7200, total), "s"))

    # Where: an address weighted by residents, hot spot communities boosted per family.
    communities = np.sort(city["community_id"].unique())
    spots = max(1, len(communities) // 12)
    picked = rng.permutation(communities)
    hot = {
        "dispute": sorted(int(c) for c in picked[:spots]),
        "hazard": sorted(int(c) for c in picked[spots : 2 * spots]),
    }
    weight = city["residents"].to_numpy(dtype=float) + 1.0
    address = np.empty(total, dtype=int)
    for name in ("dispute", "hazard", "other"):
        chosen = family == name if name != "other" else ~np.isin(family, ("dispute", "hazard"))
        boosted = weight * np.where(city["community_id"].isin(hot.get(name, [])), HOT_SPOT_FACTOR, 1.0)
        address[chosen] = _draw(rng, boosted, int(chosen.sum()))
    metres = rng.normal(0.0, 25.0, (total, 2))
    lat = city["lat"].to_numpy()[address] + metres[:, 1] / 111_320.0
    lon = city["lon"].to_numpy()[address] + metres[:, 0] / (111_320.0 * np.cos(np.radians(lat)))

    # Channel by family.
    channel = np.empty(total, dtype=object)
    for name in ("dispute", "hazard", "default"):
        chosen = family == name if name != "default" else ~np.isin(family, ("dispute", "hazard"))
        channel[chosen] = np.array(CHANNELS, dtype=object)[
            _draw(rng, np.array(CHANNEL_SHARES[name]), int(chosen.sum()))
        ]

    events = pd.DataFrame(
        {
            "n": np.arange(total),
            "category": np.array(codes)[category],
            "family": family,
            "channel": channel,
            "reported_at": reported,
            "address": address,
            "lon": lon.round(7),
            "lat": lat.round(7),
        }
    )
    # Time order, then a stable external id: the nth report of the year.
    events = events.sort_values(["reported_at", "n"], kind="stable").reset_index(drop=True)
    order = events["n"].to_numpy()
    description_pick = rng.random(total)[order]
    events["description"] = [
        CATEGORIES[codes.index(code)][2][int(u * len(CATEGORIES[codes.index(code)][2]))]
        for code, u in zip(events["category"], description_pick, strict=True)
    ]
    events["external_id"] = [f"{EXTERNAL_PREFIX}{seed}-{i + 1:06d}" for i in range(total)]
    events["address_text"] = city["full_text"].to_numpy()[events["address"].to_numpy()]
    events["address_id"] = city["id"].to_numpy()[events["address"].to_numpy()]
    events["category_id"] = categories.loc[events["category"], "id"].to_numpy()
    events["department_id"] = categories.loc[events["category"], "department_id"].to_numpy()
    events["min_level"] = categories.loc[events["category"], "min_level"].to_numpy()
    events["sla_h"] = [sla_hours.get((f, lv), 72) for f, lv in zip(events["family"], events["min_level"], strict=True)]
    return _lifecycle(rng, events, end=end, sla_hours=sla_hours, hot=hot)


def _lifecycle(rng, events: pd.DataFrame, *, end: dt.datetime, sla_hours: dict, hot: dict) -> DemoEvents:
    """Paths, step times, status at ``end``, and the transition rows."""
    total = len(events)
    names = list(PATH_SHARES)
    path = np.array(names, dtype=object)[_draw(rng, np.array(list(PATH_SHARES.values())), total)]
    # Every path at least once, on the oldest events (so they run to their end).
    path[: len(names)] = names
    reported = (events["reported_at"].astype("int64") // 10**9).to_numpy()
    sla = events["sla_h"].to_numpy(dtype=float) * 3600
    # Consultations have no desk of their own: they wait longer in triage.
    triage_wait = np.where(events["family"].to_numpy() == "consultation", 6 * 3600, 1800)
    gaps = {
        "triage": rng.uniform(60, 1800, total),
        "assign": rng.exponential(triage_wait),
        "accept": rng.exponential(4 * 3600, total) + 600,
        "resolve": sla * rng.lognormal(np.log(0.45), 0.7, total),
        "verify": rng.uniform(2, 24, total) * 3600,
        "close": rng.uniform(4, 48, total) * 3600,
        "return": rng.uniform(6, 24, total) * 3600,
        "suspend": rng.uniform(2, 24, total) * 3600,
        "resume": rng.uniform(24, 96, total) * 3600,
        "reopen": rng.uniform(24, 120, total) * 3600,
    }
    needs_location = (
        np.isin(events["channel"].to_numpy(), ("hotline", "web"))
        & (reported > int(pd.Timestamp(end).timestamp()) - 10 * 86400)
        & (rng.random(total) < 0.15)
        & (path == "usual")
    )
    satisfaction = _draw(rng, SATISFACTION, total) + 1
    unhappy = rng.integers(1, 3, total)
    end_s = int(pd.Timestamp(end).timestamp())

    rows, status, level_up = [], np.empty(total, dtype=object), np.zeros(total, dtype=int)
    resolved_at = np.full(total, -1, dtype=np.int64)
    closed_at = np.full(total, -1, dtype=np.int64)
    deadline = reported + sla.astype(np.int64)
    steps_of: list[list[tuple[str, str, str, int]]] = []
    for i in range(total):
        t = int(reported[i])
        current = "received"
        steps = [("receive", "", "received", t)]
        if not needs_location[i]:
            for action in PATHS[path[i]]:
                if action == "escalate":
                    # At the deadline, if the case is still being handled then.
                    finish = t + gaps["resolve"][i]
                    if deadline[i] < finish and deadline[i] > t:
                        steps.append(("escalate", current, current, int(deadline[i])))
                    continue
                t = int(t + gaps[action][i])
                steps.append((action, current, S[action], t))
                current = S[action]
        steps_of.append(steps)
    # The state at ``end`` (or earlier for the few stopped to show a missing status).
    cut = np.full(total, end_s, dtype=np.int64)
    final = []
    for i, steps in enumerate(steps_of):
        kept = [step for step in steps if step[3] <= cut[i]]
        final.append(kept[-1][2])
    present, forced = set(final), set()
    for missing in [s for s in STATUSES if s not in present]:
        # The newest event whose path passes the missing status stops there.
        for i in range(total - 1, -1, -1):
            steps = steps_of[i]
            # A step is a place to stop only when the next one comes later: two steps in the same
            # second (a gap that rounds to nothing) would both be kept, and the status lost.
            hits = [
                step
                for n, step in enumerate(steps)
                if step[2] == missing and step[3] <= end_s and (n + 1 == len(steps) or steps[n + 1][3] > step[3])
            ]
            if hits and i not in forced and not needs_location[i]:
                cut[i], final[i] = hits[-1][3], missing
                forced.add(i)
                break
    for i, steps in enumerate(steps_of):
        kept = [step for step in steps if step[3] <= cut[i]]
        status[i] = kept[-1][2]
        escalations = sum(1 for step in kept if step[0] == "escalate")
        level_up[i] = escalations
        for action, from_status, to_status, at in kept:
            if action == "resolve":
                resolved_at[i] = at
            if action == "close":
                closed_at[i] = at
            if action in ("return", "reopen"):
                resolved_at[i] = -1
                closed_at[i] = -1
            data = "{}"
            if action == "reopen":
                data = f'{{"satisfaction": {int(unhappy[i])}}}'
            rows.append((i, from_status, to_status, action, _actor(action), at, REASONS.get(action, ""), data))
        if escalations:
            # The escalated level's SLA counts from the escalation (layers.services.events).
            family, level = events["family"].iat[i], LEVELS[min(LEVELS.index(events["min_level"].iat[i]) + 1, 3)]
            escalated_at = next(at for action, *_, at in kept if action == "escalate")
            deadline[i] = escalated_at + sla_hours.get((family, level), 24) * 3600
    reopened = np.array([sum(1 for step in steps if step[0] == "reopen" and step[3] <= c)
                         for steps, c in zip(steps_of, cut, strict=True)])  # fmt: skip
    # Citizens rate a closed case; a case reopened once was rated 1–2, then at least 3 when it
    # closed again.
    rated = status == "closed"
    score = np.where(rated, np.where(reopened > 0, np.maximum(satisfaction, 3), satisfaction), 0)
    score = np.where((status == "reopened"), unhappy, score)
    level_index = np.array([LEVELS.index(level) for level in events["min_level"]])
    events = events.assign(
        status=status,
        needs_location=needs_location,
        responsible_level=[LEVELS[min(a + b, 3)] for a, b in zip(level_index, level_up, strict=True)],
        escalation_level=level_up,
        deadline=pd.to_datetime(deadline, unit="s", utc=True).where(~needs_location),
        received_at=events["reported_at"] + pd.to_timedelta(rng.integers(5, 120, total), "s"),
        resolved_at=pd.to_datetime(np.where(resolved_at >= 0, resolved_at, 0), unit="s", utc=True).where(
            resolved_at >= 0
        ),
        closed_at=pd.to_datetime(np.where(closed_at >= 0, closed_at, 0), unit="s", utc=True).where(closed_at >= 0),
        satisfaction=pd.Series(score, dtype="Int64").where(score > 0),
        reopen_count=reopened,
        version=[len([s for s in steps if s[3] <= c]) - 1 for steps, c in zip(steps_of, cut, strict=True)],
    )
    transitions = pd.DataFrame(rows, columns=["event", "from_status", "to_status", "action", "actor_label", "at",
                                              "reason", "data"])  # fmt: skip
    transitions["at"] = pd.to_datetime(transitions["at"], unit="s", utc=True)
    return DemoEvents(events=events, transitions=transitions, hot_spots=hot)


def _actor(action: str) -> str:
    if action in ("triage", "assign"):
        return "system:dispatch"
    if action == "escalate":
        return "system:escalate_events"
    return ACTOR if action != "receive" else "system"


# --- writing ------------------------------------------------------------------------------------

_EVENT_COLUMNS = {
    "id": "bigint", "channel": "text", "external_id": "text", "category_id": "bigint", "description": "text",
    "lon": "double precision", "lat": "double precision", "address_text": "text", "address_id": "bigint",
    "true_address_id": "bigint", "needs_location": "boolean", "status": "text", "department_id": "bigint", "responsible_level": "text",
    "escalation_level": "integer", "deadline": "timestamptz", "reported_at": "timestamptz",
    "received_at": "timestamptz", "resolved_at": "timestamptz", "closed_at": "timestamptz",
    "satisfaction": "integer", "reopen_count": "integer", "version": "integer",
}  # fmt: skip
_TRANSITION_COLUMNS = {
    "event_id": "bigint", "from_status": "text", "to_status": "text", "action": "text", "actor_label": "text",
    "at": "timestamptz", "reason": "text", "data": "text",
}  # fmt: skip


def demo_events_exist() -> bool:
    from layers.models import Event

    return Event.objects.exists()


def demo_events_write(
    *, demo: DemoEvents, replace: bool = False, on_stage: Callable[[str], object] | None = None
) -> dict:
    """Store ``demo`` in one transaction and return counts. Refuses (DemoEventsError) when events
    exist, unless ``replace`` and every stored event is a demo event: then the events, their log
    and the clusters are truncated (the log refuses DELETE; TRUNCATE is the deliberate reset)."""
    from layers.services.bulk import copy_frame, create_staging, execute, fetch
    from layers.services.clusters import clusters_rebuild
    from layers.services.linking import PointSource, link

    step = on_stage or (lambda stage: None)
    events, transitions = demo.events, demo.transitions
    with transaction.atomic():
        if demo_events_exist():
            others = fetch("SELECT count(*) FROM layers_event WHERE external_id NOT LIKE %s", [EXTERNAL_PREFIX + "%"])
            if not replace:
                raise DemoEventsError("events already exist; pass --replace to replace the demo events")
            if others[0][0]:
                raise DemoEventsError(f"{others[0][0]:,} events are not demo events; refusing to replace them")
            # Deferred foreign-key checks pending in this transaction would block the TRUNCATE.
            execute("SET CONSTRAINTS ALL IMMEDIATE")
            # Their photos, idempotency keys and public summaries belong to the demo events and go
            # with them (residents' tickets too, though a resident's report is no demo event).
            execute(
                "TRUNCATE layers_eventtransition, layers_event, layers_eventcluster, layers_eventphoto, "
                "layers_idempotencykey, layers_publicsummary, layers_residentticket"
            )
            execute("SET CONSTRAINTS ALL DEFERRED")
        step("events")
        ids = [pk for (pk,) in fetch(
            "SELECT nextval(pg_get_serial_sequence('layers_event', 'id')) FROM generate_series(1, %s)", [len(events)]
        )]  # fmt: skip
        frame = events.assign(id=ids, lon=events["lon"].where(~events["needs_location"]))
        frame["lat"] = events["lat"].where(~events["needs_location"])
        frame["address_id"] = events["address_id"].where(~events["needs_location"])
        frame["true_address_id"] = events["address_id"]
        create_staging("staging_demo_event", _EVENT_COLUMNS)
        copy_frame("staging_demo_event", frame, _EVENT_COLUMNS)
        execute(
            """
            INSERT INTO layers_event (
                id, channel, external_id, category_id, description, reporter_name_cipher, reporter_name_masked,
                reporter_phone_digest, reporter_phone_cipher, reporter_phone_masked, location, location_input,
                address_text, geocode_method, geocode_confidence, geocode_precision, matched_address_id,
                address_match, address_candidates, needs_location, status, department_id, responsible_level, joint_handling, escalation_level,
                deadline, reported_at, received_at, resolved_at, closed_at, satisfaction, reopen_count,
                dispatch_trace, version, district_code)
            SELECT s.id, s.channel, s.external_id, s.category_id, s.description, '', '', '', '', '',
                   CASE WHEN s.lon IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) END,
                   CASE WHEN s.lon IS NULL OR s.channel IN ('hotline', 'web') THEN NULL
                        ELSE jsonb_build_object('lon', s.lon, 'lat', s.lat, 'crs', 'wgs84') END,
                   s.address_text,
                   CASE WHEN s.lon IS NULL THEN 'none' WHEN s.channel IN ('hotline', 'web') THEN 'address'
                        ELSE 'coordinates' END,
                   CASE WHEN s.lon IS NULL THEN NULL WHEN s.channel IN ('hotline', 'web') THEN 0.95 ELSE 1.0 END,
                   CASE WHEN s.lon IS NULL THEN '' WHEN s.channel IN ('hotline', 'web') THEN 'room' ELSE 'point' END,
                   CASE WHEN s.channel IN ('hotline', 'web') THEN s.address_id END,
                   CASE WHEN s.lon IS NULL THEN 'unmatched' WHEN s.channel IN ('hotline', 'web') THEN 'matched'
                        ELSE '' END,
                   -- An unplaced report keeps, as the geocoder's unconfident candidate, the
                   -- standard address its text was written from.
                   CASE WHEN s.lon IS NULL
                        THEN jsonb_build_array((SELECT a.code FROM layers_address a WHERE a.id = s.true_address_id))
                        ELSE '[]'::jsonb END,
                   s.needs_location, s.status,
                   CASE WHEN s.needs_location THEN NULL
                        ELSE coalesce(s.department_id, (SELECT id FROM layers_department WHERE code = 'command_center'))
                   END,
                   s.responsible_level, s.department_id IS NULL AND NOT s.needs_location, s.escalation_level,
                   s.deadline, s.reported_at, s.received_at, s.resolved_at, s.closed_at, s.satisfaction,
                   s.reopen_count, '{"reason": "demo data (generate_demo_events)"}'::jsonb, s.version, ''
            FROM staging_demo_event s
            """
        )
        step("transitions")
        log = transitions.assign(event_id=np.asarray(ids)[transitions["event"].to_numpy()])
        create_staging("staging_demo_transition", _TRANSITION_COLUMNS)
        copy_frame("staging_demo_transition", log, _TRANSITION_COLUMNS)
        execute(
            """INSERT INTO layers_eventtransition (event_id, from_status, to_status, action, actor_label, at, reason, data)
               SELECT event_id, from_status, to_status, action, actor_label, at, reason, data::jsonb
               FROM staging_demo_transition ORDER BY event_id, at"""
        )
        step("links")
        linked = link(PointSource("layers_event"), where="t.location IS NOT NULL")
        step("clusters")
        clusters = clusters_rebuild()
        execute("ANALYZE layers_event")
        execute("ANALYZE layers_eventtransition")
    return {"events": len(events), "transitions": len(transitions), "linked": linked, "clusters": clusters}
