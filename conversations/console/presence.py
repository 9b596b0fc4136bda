"""Which agents are online: those with a console socket open, counted across every Daphne process.

Each console socket is a member of one Redis sorted set, scored by the last time it was heard from (on
connect and on every ping the console sends every 25 s). A socket that closes cleanly leaves at once; one
whose process died simply stops being refreshed and drops out after PRESENCE_TTL_S. When Redis cannot be
reached presence is unknown (None), and nobody is told that no agent is online.

Besides being connected, an agent picks a state in the console (`set_state`): online (the default),
away or offline. Only connected agents whose chosen state is online (and who are not idle, below) are
`available` for auto-assignment offers (conversations.assignment); opening the console with no choice
stored, or choosing online again, makes them available. The choice is kept for PRESENCE_STATE_TTL_S
after it was last set.

Activity: the console reports keyboard, mouse and focus activity (throttled, an `activity` frame; opening
the console counts too), stored as one more Redis sorted set of agent ids scored by the time of their
last activity. An agent who chose online but has shown no activity for TALIA_PRESENCE_IDLE_MIN minutes
is away (`state_of`), automatically: not available for offers, and back online at their next activity.
A chosen away or offline is never changed by activity. The console's ping notices the moment an agent
turns idle (`notice_idle`, which remembers it in a third set) so the monitor is told; the activity that
ends it (`record_activity`) tells the monitor again and offers the agent waiting conversations.
An agent with no activity stored at all (Redis lost it) counts as active.
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from conversations import realtime
from talia.redis_client import get_redis

logger = logging.getLogger(__name__)

# Comfortably more than the console's 25 s ping interval, so one late ping does not flicker an agent away.
PRESENCE_TTL_S = 75


def _key() -> str:
    return f"{settings.REDIS_PREFIX}:console:sockets"


def _member(user_id: int, channel_name: str) -> str:
    return f"{user_id} {channel_name}"


def touch(user_id: int, channel_name: str) -> None:
    """This console socket is alive (connected or pinged just now)."""
    try:
        get_redis().zadd(_key(), {_member(user_id, channel_name): time.time()})
    except redis.RedisError:
        logger.warning("Could not record the presence of agent %s", user_id, exc_info=True)


def leave(user_id: int, channel_name: str) -> None:
    try:
        get_redis().zrem(_key(), _member(user_id, channel_name))
    except redis.RedisError:
        logger.warning("Could not record that agent %s left", user_id, exc_info=True)


STATES = ("online", "away", "offline")
# An agent's chosen state is forgotten after a day without being set again: tomorrow starts online.
PRESENCE_STATE_TTL_S = 86400


def _state_key(user_id: int) -> str:
    return f"{settings.REDIS_PREFIX}:console:state:{user_id}"


def set_state(user_id: int, value: str) -> None:
    """The agent's chosen state (one of STATES). Raises redis.RedisError when it cannot be stored."""
    if value not in STATES:
        raise ValueError(f"Presence state must be one of {', '.join(STATES)}.")
    get_redis().set(_state_key(user_id), value, ex=PRESENCE_STATE_TTL_S)


def chosen_state(user_id: int) -> str:
    """What the agent chose (online when nothing was chosen or Redis cannot say)."""
    try:
        value = get_redis().get(_state_key(user_id))
    except redis.RedisError:
        return "online"
    text = value.decode() if isinstance(value, bytes) else value
    return text if text in STATES else "online"


def state_of(user_id: int, online: set[int] | None = None) -> str:
    """offline when no console socket is open, else the state the agent chose, but away when they chose
    online and have been idle for TALIA_PRESENCE_IDLE_MIN."""
    online = online_agent_ids() if online is None else online
    if online is not None and user_id not in online:
        return "offline"
    chosen = chosen_state(user_id)
    if chosen == "online" and is_idle(user_id):
        return "away"
    return chosen


def available_agent_ids() -> set[int]:
    """Connected agents whose chosen state is online and who are not idle: who may be offered
    conversations (empty when unknown)."""
    online = online_agent_ids()
    if not online:
        return set()
    idle = idle_agent_ids()
    return {user_id for user_id in online if user_id not in idle and chosen_state(user_id) == "online"}


# --- Activity ----------------------------------------------------------------------------------------


def _activity_key() -> str:
    return f"{settings.REDIS_PREFIX}:console:activity"


def _idle_key() -> str:
    return f"{settings.REDIS_PREFIX}:console:idle"


def idle_after_s() -> float:
    return settings.TALIA_PRESENCE_IDLE_MIN * 60.0


def record_activity(user_id: int) -> bool:
    """The agent used their console just now. True when this ends an idle spell, noticed by a ping or not
    yet (the caller announces it and offers them waiting conversations)."""
    client = get_redis()
    now = time.time()
    try:
        pipe = client.pipeline()
        pipe.zscore(_activity_key(), str(user_id))
        pipe.zadd(_activity_key(), {str(user_id): now})
        pipe.srem(_idle_key(), str(user_id))
        last, _, noticed = pipe.execute()
    except redis.RedisError:
        logger.warning("Could not record the activity of agent %s", user_id, exc_info=True)
        return False
    return bool(noticed) or (last is not None and last < now - idle_after_s())


def idle_agent_ids() -> set[int]:
    """Agents whose last activity is older than TALIA_PRESENCE_IDLE_MIN (empty when Redis cannot say)."""
    try:
        members = get_redis().zrangebyscore(_activity_key(), "-inf", time.time() - idle_after_s())
    except redis.RedisError:
        logger.warning("Could not read agent activity", exc_info=True)
        return set()
    return {
        int(member) for member in (m.decode() if isinstance(m, bytes) else str(m) for m in members) if member.isdigit()
    }


def is_idle(user_id: int) -> bool:
    try:
        score = get_redis().zscore(_activity_key(), str(user_id))
    except redis.RedisError:
        return False
    return score is not None and score < time.time() - idle_after_s()


def notice_idle(user_id: int) -> bool:
    """True the first time the agent is seen idle since their last activity (the caller announces it)."""
    if not is_idle(user_id):
        return False
    try:
        return bool(get_redis().sadd(_idle_key(), str(user_id)))
    except redis.RedisError:
        return False


def online_agent_ids() -> set[int] | None:
    """Ids of the users with a live console socket; None when Redis cannot say."""
    client = get_redis()
    try:
        client.zremrangebyscore(_key(), "-inf", time.time() - PRESENCE_TTL_S)
        members = client.zrange(_key(), 0, -1)
    except redis.RedisError:
        logger.warning("Could not read agent presence", exc_info=True)
        return None
    ids = set()
    for member in members:
        user_id, _, _channel = (member.decode() if isinstance(member, bytes) else str(member)).partition(" ")
        if user_id.isdigit():
            ids.add(int(user_id))
    return ids


def online_agents() -> list[AbstractBaseUser] | None:
    """The online agents themselves (active users only), by name; None when presence is unknown."""
    ids = online_agent_ids()
    if ids is None:
        return None
    users = get_user_model().objects.filter(pk__in=ids, is_active=True)
    return sorted(users, key=lambda user: (user.get_full_name() or user.get_username()).lower())  # type: ignore[attr-defined]


def announce() -> None:
    """Tell the supervisors' monitor who is online now and in which chosen state (after a console socket
    opens or closes, or an agent picks a state)."""
    agents = online_agents()
    if agents is not None:
        online = {int(agent.pk) for agent in agents}
        states = {int(agent.pk): state_of(int(agent.pk), online) for agent in agents}
        realtime.publish([realtime.MONITOR_GROUP], realtime.agents_online(list(agents), states))


def online_count() -> int | None:
    agents = online_agents()
    return None if agents is None else len(agents)
