"""Which agents are online: those with a console socket open, counted across every Daphne process.

Each console socket is a member of one Redis sorted set, scored by the last time it was heard from (on
connect and on every ping the console sends every 25 s). A socket that closes cleanly leaves at once; one
whose process died simply stops being refreshed and drops out after PRESENCE_TTL_S. When Redis cannot be
reached presence is unknown (None), and nobody is told that no agent is online.

Besides being connected, an agent picks a state in the console (`set_state`): online (the default),
away or offline. Only connected agents whose chosen state is online are `available` for
auto-assignment (conversations.teams); opening the console with no choice stored, or choosing online
again, makes them available. The choice is kept for PRESENCE_STATE_TTL_S after it was last set.
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
    """offline when no console socket is open, else the state the agent chose."""
    online = online_agent_ids() if online is None else online
    if online is not None and user_id not in online:
        return "offline"
    return chosen_state(user_id)


def available_agent_ids() -> set[int]:
    """Connected agents whose chosen state is online: who may be auto-assigned (empty when unknown)."""
    online = online_agent_ids()
    if not online:
        return set()
    return {user_id for user_id in online if chosen_state(user_id) == "online"}


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
        states = {int(agent.pk): chosen_state(int(agent.pk)) for agent in agents}
        realtime.publish([realtime.MONITOR_GROUP], realtime.agents_online(list(agents), states))


def online_count() -> int | None:
    agents = online_agents()
    return None if agents is None else len(agents)
