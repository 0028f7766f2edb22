"""The token buckets of the per-user quotas, with a clock of our own."""

from __future__ import annotations

import uuid

import pytest

from scrobble_gateway.quotas import (
    Bucket,
    Charge,
    Policy,
    QuotaBuckets,
    charge,
    rate_limit_fields,
)

WRITES = Policy("writes", 60)  # one unit a second
READS = Policy("reads", 600)


def test_a_new_bucket_is_full_and_each_charge_takes_one() -> None:
    bucket, first = charge(None, WRITES, now=100.0)
    assert (first.allowed, first.remaining, first.wait_s) == (True, 59, 1)
    assert bucket == Bucket(59.0, 100.0)


def test_an_empty_bucket_refuses_and_says_when_a_unit_is_back() -> None:
    bucket, refused = charge(Bucket(0.25, 10.0), WRITES, now=10.0)
    assert (refused.allowed, refused.remaining, refused.wait_s) == (False, 0, 1)
    assert bucket.tokens == 0.25  # a refusal takes nothing
    _, slow = charge(Bucket(0.0, 10.0), Policy("writes", 6), now=10.0)  # one per 10 s
    assert (slow.allowed, slow.wait_s) == (False, 10)


def test_a_bucket_refills_with_time_up_to_a_minute_s_quota() -> None:
    _, after_half = charge(Bucket(0.0, 0.0), WRITES, now=30.5)
    assert (after_half.allowed, after_half.remaining) == (True, 29)
    bucket, after_long = charge(Bucket(0.0, 0.0), WRITES, now=10_000.0)
    assert after_long.remaining == 59
    assert bucket.tokens == 59.0
    # A clock that went back refills nothing.
    _, backwards = charge(Bucket(3.0, 50.0), WRITES, now=40.0)
    assert backwards.remaining == 2


def test_the_fields_name_the_policy_and_leave_t_out_when_full() -> None:
    _, charged = charge(None, READS, now=0.0)
    assert rate_limit_fields(charged) == {
        "RateLimit-Policy": '"reads";q=600;w=60',
        "RateLimit": '"reads";r=599;t=1',
    }
    full = rate_limit_fields(Charge(READS, allowed=True, remaining=600, wait_s=0))
    assert full["RateLimit"] == '"reads";r=600'


@pytest.mark.parametrize(
    ("method", "policy"),
    [
        ("GET", "reads"),
        ("HEAD", "reads"),
        ("OPTIONS", "reads"),
        ("POST", "writes"),
        ("PUT", "writes"),
        ("DELETE", "writes"),
        ("PATCH", "writes"),
    ],
)
def test_methods_map_to_policies(method: str, policy: str) -> None:
    assert QuotaBuckets(READS, WRITES).policy_for(method).name == policy


def test_users_and_policies_have_buckets_of_their_own() -> None:
    now = [0.0]
    buckets = QuotaBuckets(Policy("reads", 2), Policy("writes", 1), clock=lambda: now[0])
    alice, bob = uuid.uuid4(), uuid.uuid4()
    assert buckets.charge(alice, "POST").allowed
    assert not buckets.charge(alice, "PUT").allowed
    assert buckets.charge(alice, "GET").allowed
    assert buckets.charge(bob, "DELETE").allowed
    now[0] = 60.0
    assert buckets.charge(alice, "POST").allowed


def test_memory_is_bounded_dropping_the_least_recently_used() -> None:
    now = [0.0]
    buckets = QuotaBuckets(READS, WRITES, max_tracked=3, clock=lambda: now[0])
    users = [uuid.uuid4() for _ in range(4)]
    for user in users[:3]:
        buckets.charge(user, "POST")
    buckets.charge(users[0], "POST")  # users[0] is the most recent now
    buckets.charge(users[3], "POST")  # drops users[1], the least recent
    assert len(buckets) == 3
    assert buckets.charge(users[0], "POST").remaining == 57  # kept: its third unit
    assert buckets.charge(users[1], "POST").remaining == 59  # dropped: a new, full bucket
