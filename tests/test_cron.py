""" Tests of pyrotorque's cron schedules (CronSchedule).

    APScheduler 3.11.3 is the oracle: its CronTrigger semantics are what we
    implement, so the golden table is checked against it too and a hypothesis
    test compares both on generated schedules (in UTC; DST has its own tests).
"""
import contextlib
import datetime
import math
import os
import re
import shlex
import time
import zoneinfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import pyrotorque
from pyrotorque import ConfigError, CronSchedule

UTC = datetime.timezone.utc
SECOND = datetime.timedelta(seconds=1)


def utc(text):
    """ '2024-03-31 01:30' (or with seconds, microseconds) as an aware UTC datetime. """
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


###############################################################################
# Golden cases ################################################################
###############################################################################

#: foundations.md section 2: APScheduler's own test cases (1-14) and ones
#: computed with it (15-28), as (schedule, start, next fire) in UTC.
GOLDEN = [
    ("year=2009/2 month=1/3 day=5-13", "2008-12-01", "2009-01-05 00:00"),
    ("year=2009/2 month=1/3 day=5-13", "2009-10-14", "2011-01-05 00:00"),
    ("year=2009 month=feb-dec hour=8-10", "2009-01-01", "2009-02-01 08:00"),
    ("year=2012 month=2 day=last", "2012-02-01", "2012-02-29 00:00"),
    ("year=2009,2008", "2009-01-01", "2009-01-01 00:00"),
    ("year=2009 month=2 hour=8-10 'start_date=2009-02-03 11:00:00'",
     "2009-01-01", "2009-02-04 08:00"),
    ("year=2009 month=1 day=6-10 day_of_week=2-4", "2009-01-01", "2009-01-07 00:00"),
    ("year=2009 month=1 day=6-10 day_of_week=0,6", "2009-01-01", None),
    ("year=2009 month=1 'day=4th wed'", "2009-01-01", "2009-01-28 00:00"),
    ("year=2009 month=2 week=8", "2009-01-01", "2009-02-16 00:00"),
    ("year=2009 week=15 day_of_week=2", "2009-01-01", "2009-04-08 00:00"),
    ("day=6,8", "2009-12-31", "2010-01-06 00:00"),
    ("hour=5-6", "2009-09-25 07:00", "2009-09-26 05:00"),
    ("day=30", "2016-02-01", "2016-03-30 00:00"),
    ("second=*/5", "2024-01-01 12:00:03", "2024-01-01 12:00:05"),
    ("second=*/15", "2024-01-01 12:00:59.500000", "2024-01-01 12:01:00"),
    ("minute=*/5", "2024-01-01 12:03:30", "2024-01-01 12:05:00"),
    ("hour=*", "2024-01-01 10:30:00", "2024-01-01 11:00:00"),
    ("hour=*/6 minute=30", "2024-01-01 07:00", "2024-01-01 12:30"),
    ("hour=12 'day=3rd sun'", "2024-01-01", "2024-01-21 12:00"),
    ("'day=last sun'", "2024-01-01", "2024-01-28 00:00"),
    ("'day=last fri' hour=23", "2024-02-10", "2024-02-23 23:00"),
    ("day_of_week=mon-fri hour=5 minute=30", "2024-01-06", "2024-01-08 05:30"),
    ("month=6-8,11-12 'day=3rd fri' hour=0-3", "2024-01-01", "2024-06-21 00:00"),
    ("'day=5th mon'", "2024-02-01", "2024-04-29 00:00"),
    ("day=last day_of_week=fri", "2024-01-01", "2024-05-31 00:00"),
    ("month=2 day=29", "2025-01-01", "2028-02-29 00:00"),
    ("minute=5/20", "2024-01-01 00:06", "2024-01-01 00:25"),
]

#: pyrocore's documented examples (pyrocore-behaviour.md section 3).
PYROCORE_EXAMPLES = [
    ("second=*/15", "2024-01-01 12:00:01", "2024-01-01 12:00:15"),
    ("second=*/15", "2024-01-01 12:00:45.000001", "2024-01-01 12:01:00"),
    ("minute=*", "2024-01-01 12:00:01", "2024-01-01 12:01:00"),
    ("hour=*", "2024-01-01 12:00:01", "2024-01-01 13:00:00"),
    ("second=*/5", "2024-01-01 12:00:00", "2024-01-01 12:00:00"),
    ('hour=12 "day=3rd sun"', "2024-02-18 12:00:01", "2024-03-17 12:00:00"),
]


@pytest.mark.parametrize("text, start, expected", GOLDEN + PYROCORE_EXAMPLES)
def test_the_next_fire_time_matches_the_golden_table(text, start, expected):
    fire = CronSchedule(text).next_fire(utc(start))
    assert fire == (utc(expected) if expected else None)


@pytest.mark.parametrize("text, start, expected", GOLDEN + PYROCORE_EXAMPLES)
def test_apscheduler_agrees_with_the_golden_table(text, start, expected):
    fields = dict(word.split("=", 1) for word in shlex.split(text))
    fire = CronTrigger(timezone="UTC", **fields).get_next_fire_time(None, utc(start))
    assert fire == (utc(expected) if expected else None)


@pytest.mark.parametrize("text, start, fires", [
    ("day=1 minute=20", "2024-01-01 00:00", ["00:20", "01:20", "02:20"]),
    ("hour=*/6", "2024-01-01 00:00:01", ["06:00", "12:00", "18:00"]),
    ("month=2", "2024-01-01", ["2024-02-01", "2025-02-01"]),
    ("week=10", "2024-03-09", ["2024-03-09", "2024-03-10", "2025-03-03"]),
    ("day_of_week=sun", "2024-01-01", ["2024-01-07", "2024-01-14"]),
])
def test_fields_left_out_are_all_above_and_minimal_below_the_smallest_given(
        text, start, fires):
    day = start[:10]
    expected = [utc(fire if len(fire) > 5 else f"{day} {fire}") for fire in fires]
    assert march(CronSchedule(text), utc(start), len(expected)) == expected


def test_day_and_day_of_week_must_both_match():
    # The 13th that is a Friday, not every 13th and every Friday (Vixie cron).
    fires = march(CronSchedule("day=13 day_of_week=fri"), utc("2024-01-01"), 3)
    assert fires == [utc("2024-09-13"), utc("2024-12-13"), utc("2025-06-13")]


def test_the_start_instant_itself_fires():
    assert CronSchedule("minute=*/5").next_fire(utc("2024-01-01 12:05")) == utc("2024-01-01 12:05")


def test_a_fraction_of_a_second_rounds_up():
    schedule = CronSchedule("second=*")
    assert schedule.next_fire(utc("2024-01-01 12:00:00.000001")) == utc("2024-01-01 12:00:01")


def test_there_is_no_next_fire_once_the_years_are_over():
    assert CronSchedule("year=2009").next_fire(utc("2024-01-01")) is None
    assert CronSchedule("year=9999 month=12 day=31 hour=23 minute=59 second=59").next_fire(
        utc("9999-12-31 23:59:59.500000")) is None


def test_a_day_that_never_comes_gives_none():
    assert CronSchedule("month=2 day=30").next_fire(utc("2024-01-01")) is None
    assert CronSchedule("week=53 month=6").next_fire(utc("2024-01-01")) is None


def test_times_before_1970_start_the_search_in_1970():
    assert CronSchedule("hour=*").next_fire(utc("1900-01-01")) == utc("1970-01-01")
    assert CronSchedule("hour=*").next_fire(datetime.datetime.min.replace(tzinfo=UTC)) \
        == utc("1970-01-01")


def test_the_end_date_is_inclusive_and_ends_the_schedule():
    schedule = CronSchedule("hour=* end_date=2024-01-01T05:00:00")
    assert schedule.next_fire(utc("2024-01-01 04:30")) == utc("2024-01-01 05:00")
    assert schedule.next_fire(utc("2024-01-01 05:00:01")) is None


def test_the_start_date_may_carry_its_own_utc_offset():
    schedule = CronSchedule("hour=* 'start_date=2024-01-01 05:30:00+02:00'")
    assert schedule.next_fire(utc("2024-01-01")) == utc("2024-01-01 04:00")
    assert schedule.next_fire(utc("2024-01-01 07:00")) == utc("2024-01-01 07:00")


def test_a_naive_start_date_is_in_the_zone_next_fire_is_asked_in():
    schedule = CronSchedule("hour=* start_date=2024-01-01T06:00")
    berlin = datetime.timezone(datetime.timedelta(hours=1))
    fire = schedule.next_fire(datetime.datetime(2024, 1, 1, tzinfo=berlin))
    assert fire == datetime.datetime(2024, 1, 1, 6, tzinfo=berlin)


def test_jitter_may_end_in_what_str_strip_takes_off_but_int_does_not():
    """'\x1e' is whitespace to str.strip() and not to int() (found by atheris)."""
    assert CronSchedule("hour=1 jitter=5\x1e\x1e").jitter == 5


@pytest.mark.parametrize("text, hours", [
    ("second=0 start_date=9999-12-31T23:59:59Z", -14),     # past 9999 in the asking zone
    ("second=0 start_date=9999-12-31T23:59:59", 14),        # naive: in the asking zone
    ("second=0 start_date=9999-12-31T23:59:59+14:00", 14),
    ("second=0 start_date=9999-12-31T23:59:59", None),      # naive, local time 9 h east
    ("second=0 end_date=9999-12-31T23:59:59", None),
])
def test_a_fire_time_past_year_9999_is_none_not_an_error(text, hours):
    """datetime ends with 9999 (found by the fuzzing: ValueError from next_fire)."""
    if hours is None:
        with local_zone("JST-9"):
            fire = CronSchedule(text).next_fire(datetime.datetime(9999, 12, 31, 23, 59))
    else:
        zone = datetime.timezone(datetime.timedelta(hours=hours))
        fire = CronSchedule(text).next_fire(datetime.datetime(2024, 1, 1, tzinfo=zone))
    assert fire is None


def test_next_fire_keeps_the_zone_of_an_aware_datetime():
    zone = datetime.timezone(datetime.timedelta(hours=-5))
    fire = CronSchedule("hour=12").next_fire(datetime.datetime(2024, 1, 1, tzinfo=zone))
    assert fire == datetime.datetime(2024, 1, 1, 12, tzinfo=zone)
    assert fire.tzinfo is zone


def test_next_fire_wants_a_datetime():
    with pytest.raises(TypeError):
        CronSchedule("hour=*").next_fire(datetime.date(2024, 1, 1))


###############################################################################
# Errors ######################################################################
###############################################################################

#: (schedule, a word its error message must contain: the field or the token).
BAD_SCHEDULES = [
    ("second=*/60", "second"), ("hour=0-24", "hour"), ("day=*/31", "day"),
    ("day=0-3", "day"), ("day_of_week=7", "day_of_week"), ("hour=20-4", "hour"),
    ("minute=*/0", "minute"), ("'day=6th mon'", "day"), ("week=54", "week"),
    ("year=1969", "year"), ("year=10000", "year"), ("month=13", "month"),
    ("hour=5-5/1", "hour"), ("hour=23/1", "hour"), ("hour=30/2", "hour"),
    ("minute=99999999999999999999999", "minute"), ("second=*/99999999999999", "second"),
    ("day_of_week=mon-fri/2", "day_of_week"),     # APScheduler ignores the step
    ("day=lastx", "day"),                         # APScheduler reads "last"
    ("month=jan/2", "month"), ("month=jan-3", "month"), ("month=1-feb", "month"),
    ("month=janu", "month"), ("month=mon", "month"), ("day_of_week=jan", "day_of_week"),
    ("day_of_week=fri-mon", "day_of_week"), ("'day=3rd sunday'", "day"),
    ("'day=3rd 2'", "day"), ("'day=last sun foo'", "day"), ("hour=last", "hour"),
    ("hour=x", "hour"), ("hour=1,,2", "hour"), ("hour=1,", "hour"), ("hour=", "hour"),
    ("hour=*-5", "hour"), ("'hour=1 2'", "hour"), ("hour=1-2-3", "hour"),
    ("hour=-1", "hour"), ("hour=١", "hour"),
    ("hours=5", "hours"), ("=5", "''"), ("%s=1", "'%s'"), ("hour 5", "hour"), ("hour=1 5", "'5'"),
    ("", "empty"), ("   ", "empty"), ("hour=1 HOUR=2", "hour"),
    ("timezone=UTC hour=1", "timezone"), ("jitter=x hour=1", "jitter"),
    ("jitter=-5 hour=1", "jitter"), ("jitter=1.5 hour=1", "jitter"),
    ("jitter=%s hour=1" % ("9" * 5000), "jitter"),      # int() takes 4300 digits (fuzzing)
    ("hour=1 start_date=2024-13-01", "start_date"), ("hour=1 start_date=yesterday", "start_date"),
    ("hour=1 end_date=0024-01-01", "end_date"), ("hour=1 'end_date=2024-01-01 25:00'", "end_date"),
    ("start_date=2024-01-01", "no time field"), ('"hour=1', "quotation"),
]


@pytest.mark.parametrize("text, word", BAD_SCHEDULES)
def test_a_bad_schedule_raises_a_config_error_that_says_where(text, word):
    with pytest.raises(ConfigError) as caught:
        CronSchedule(text)
    message = str(caught.value)
    assert message.startswith(f"schedule {text!r}: ")
    assert word in message


def test_an_error_message_names_the_field_the_value_and_the_problem():
    with pytest.raises(ConfigError) as caught:
        CronSchedule("hour=0-24")
    assert str(caught.value) == "schedule 'hour=0-24': hour: 24 is out of range 0-23"


def test_a_config_error_is_a_value_error_and_a_pyrotorque_error():
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, pyrotorque.PyrotorqueError)


###############################################################################
# Text, equality ##############################################################
###############################################################################

@pytest.mark.parametrize("text, normal", [
    ("second=*/15", "second=*/15"),
    ("HOUR=05 Minute=00", "hour=5 minute=0"),
    ("minute=0 hour=*/6", "hour=*/6 minute=0"),
    ("'day=1 , 15'", "day=1,15"),
    ("'day=3RD  Sun'", "'day=3rd sun'"),
    ('hour=12 "day=3rd sun"', "'day=3rd sun' hour=12"),
    ("day_of_week=MON-Fri", "day_of_week=mon-fri"),
    ("month=Feb-DEC,1", "month=feb-dec,1"),
    ("minute=05/20 second=0-59/5", "minute=5/20 second=0-59/5"),
    ("hour=1 start_date=2024-01-01", "hour=1 start_date=2024-01-01T00:00:00"),
    ("end_date=2024-01-01T12:00Z hour=1", "hour=1 end_date=2024-01-01T12:00:00+00:00"),
])
def test_str_gives_back_a_normalized_text(text, normal):
    schedule = CronSchedule(text)
    assert str(schedule) == normal
    assert CronSchedule(str(schedule)) == schedule


def test_schedules_with_the_same_normalized_text_are_equal():
    assert CronSchedule("minute=0 hour=*/6") == CronSchedule("HOUR=*/6  minute=00")
    assert hash(CronSchedule("minute=0 hour=*/6")) == hash(CronSchedule("hour=*/6 minute=0"))
    assert CronSchedule("hour=*/6") != CronSchedule("hour=*/6 minute=0")
    assert CronSchedule("hour=*/6") != "hour=*/6"


def test_repr_shows_the_normalized_text():
    assert repr(CronSchedule('hour=12 "day=3rd sun"')) == "CronSchedule(\"'day=3rd sun' hour=12\")"


###############################################################################
# APScheduler as the oracle ###################################################
###############################################################################

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _items(low, high, names=(), day=False):
    """ Good and bad comma-list items for a field (bad: both must reject them). """
    number = st.integers(low, high)
    pair = st.tuples(number, number).map(sorted)
    step = st.integers(1, max(1, (high - low) // 2))

    def stepped(first, last):   # a step that fits: "a-b/step" or "a/step" (last None)
        size = st.integers(1, (last or high) - first)
        return size.map(lambda size: f"{first}-{last}/{size}" if last else f"{first}/{size}")

    below_high = st.integers(low, high - 1)
    good = [st.just("*"), st.builds("*/{}".format, step), st.builds(str, number),
            pair.map("{0[0]}-{0[1]}".format),
            below_high.flatmap(lambda first: st.integers(first + 1, high).flatmap(
                lambda last: stepped(first, last))),
            below_high.flatmap(lambda first: stepped(first, None))]
    bad = [st.builds(str, st.sampled_from((low - 1, high + 1))),
           st.sampled_from(("*/0", f"*/{high - low + 1}", f"{high}-{low}", f"{low}/{high + 5}"))]
    if names:
        name = st.sampled_from(names).map(
            lambda word: word.upper() if len(set(word)) % 2 else word.capitalize())
        good += [name, st.tuples(name, name).map(
            lambda ab: "-".join(sorted(ab, key=lambda word: names.index(word.lower()))))]
        bad += [st.just("foo"), st.just(f"{names[-1]}-{names[0]}")]
    if day:
        weekday = st.sampled_from(WEEKDAYS)
        position = st.sampled_from(("1st", "2nd", "3rd", "4th", "5th", "last", "LAST"))
        good += [st.just("last"), st.builds("{} {}".format, position, weekday)]
        bad += [st.builds("6th {}".format, weekday), st.just("3rd 2")]
    return st.one_of(good), st.one_of(bad)


_YEARS = st.integers(1970, 2100)
_FIELD_ITEMS = {
    "year": (st.one_of(
        st.just("*"), st.builds("*/{}".format, st.sampled_from((1, 2, 3, 7))),
        st.builds(str, _YEARS), st.tuples(_YEARS, _YEARS).map(sorted).map("{0[0]}-{0[1]}".format),
        st.builds("{}/{}".format, _YEARS, st.integers(1, 5)),
        st.sampled_from(("9999", "2090-9999/1000"))),
        st.sampled_from(("1969", "10000", "*/8030", "*/0", "2000-1999"))),
    "month": _items(1, 12, MONTHS),
    "day": _items(1, 31, day=True),
    "week": _items(1, 53),
    "day_of_week": _items(0, 6, WEEKDAYS),
    "hour": _items(0, 23),
    "minute": _items(0, 59),
    "second": _items(0, 59),
}
_SEPARATOR = st.sampled_from((",", ",", ",", " , "))
_ONE_IN_SIX = st.sampled_from((False,) * 5 + (True,))


@st.composite
def cron_fields(draw):
    """ A dict of field=value as CronTrigger takes it (at least one time field);
        about one in six has a bad item somewhere. """
    names = draw(st.lists(st.sampled_from(list(_FIELD_ITEMS)), min_size=1, max_size=4,
                          unique=True))
    fields = {}
    for name in names:
        good, _ = _FIELD_ITEMS[name]
        items = draw(st.lists(good, min_size=1, max_size=3))
        fields[name] = items[0] + "".join(draw(_SEPARATOR) + item for item in items[1:])
    if draw(_ONE_IN_SIX):
        name = draw(st.sampled_from(names))
        fields[name] += "," + draw(_FIELD_ITEMS[name][1])
    for name in ("start_date", "end_date"):
        if draw(_ONE_IN_SIX):
            date = draw(st.datetimes(datetime.datetime(2000, 1, 1), datetime.datetime(2060, 1, 1)))
            fields[name] = date.strftime("%Y-%m-%d %H:%M:%S")
    return fields


@pytest.mark.parametrize("text", [
    "day_of_week=mon-fri/2",    # APScheduler: every weekday, the step ignored
    "month=jan/2",              # APScheduler: january only
    "month=jan-3",              # APScheduler: january only
    "day=lastx",                # APScheduler: the last day
    "'day=3rd sun foo'",        # APScheduler: the third Sunday
])
def test_text_apscheduler_silently_misreads_is_an_error(text):
    field, value = shlex.split(text)[0].split("=", 1)
    CronTrigger(timezone="UTC", **{field: value})
    with pytest.raises(ConfigError, match=field):
        CronSchedule(text)


def _oracle_quirk(fields):
    """ APScheduler's "0-0/step" counts as 0-max/step when validating; ours does not. """
    return any(re.search(r"(^|[ ,])0+-0+/", value) for value in fields.values())


def _schedule_text(fields):
    return " ".join(shlex.quote(f"{name}={value}") for name, value in fields.items())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=cron_fields(),
       start=st.datetimes(datetime.datetime(1970, 1, 2), datetime.datetime(2100, 1, 1)))
def test_next_fire_agrees_with_apscheduler(fields, start):
    assume(not _oracle_quirk(fields))
    start = start.replace(tzinfo=UTC)
    try:
        ours = CronSchedule(_schedule_text(fields))
    except ConfigError:
        ours = None
    try:
        oracle = CronTrigger(timezone="UTC", **fields)
    except ValueError:
        oracle = None
    assert (ours is None) == (oracle is None), (fields, ours, oracle)
    event("valid schedule" if ours else "rejected schedule")
    if ours is None:
        return

    fire = ours.next_fire(start)
    # Cap the oracle's search (it may walk up to year 9999): at our answer,
    # or, for none, at 401 years, past which the calendar repeats.
    if fire is not None:
        oracle.end_date = fire
    elif "year" not in fields and "end_date" not in fields:
        oracle.end_date = start.replace(year=start.year + 401)
    event("fires" if fire else "never fires")
    assert fire == oracle.get_next_fire_time(None, start), fields


@settings(max_examples=300, deadline=None)
@given(fields=cron_fields())
def test_a_normalized_text_means_the_same_schedule(fields):
    try:
        schedule = CronSchedule(_schedule_text(fields))
    except ConfigError:
        return
    again = CronSchedule(str(schedule))
    assert again == schedule and str(again) == str(schedule)
    start = utc("2024-05-17 13:14:15")
    assert again.next_fire(start) == schedule.next_fire(start)


_SCHEDULE_ALPHABET = "yearmonthdaywkofsclt_iz=*/-,0123456789 \"'\\\t\n:TZ+."


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(st.text(), st.text(alphabet=_SCHEDULE_ALPHABET)))
def test_bad_text_only_ever_raises_a_config_error(text):
    try:
        schedule = CronSchedule(text)
    except ConfigError:
        return
    fire = schedule.next_fire(utc("2024-01-01"))
    assert fire is None or fire >= utc("2024-01-01")


###############################################################################
# DST #########################################################################
###############################################################################

# Transitions used (UTC):
#   Europe/Berlin  2024-03-31 01:00  02:00 CET  -> 03:00 CEST (02:xx skipped)
#                  2024-10-27 01:00  03:00 CEST -> 02:00 CET  (02:xx twice)
#   US/Eastern     2024-03-10 07:00  02:00 EST  -> 03:00 EDT  (02:xx skipped)
#                  2013-11-03 06:00  02:00 EDT  -> 01:00 EST  (01:xx twice)
# Each zone is tried as naive local time under a POSIX TZ string (no tzdata
# needed) and as aware datetimes with zoneinfo (if tzdata is installed).
ZONES = {
    "Europe/Berlin": "CET-1CEST,M3.5.0,M10.5.0/3",
    "US/Eastern": "EST5EDT,M3.2.0,M11.1.0",
}
TRANSITIONS = [
    ("Europe/Berlin", "2024-03-31 01:00"), ("Europe/Berlin", "2024-10-27 01:00"),
    ("US/Eastern", "2024-03-10 07:00"), ("US/Eastern", "2013-11-03 06:00"),
]


def _have_tzdata():
    try:
        return all(zoneinfo.ZoneInfo(key) for key in ZONES)
    except zoneinfo.ZoneInfoNotFoundError:
        return False


KINDS = ["posix"] + (["zoneinfo"] if _have_tzdata() else [])


@contextlib.contextmanager
def local_zone(posix_tz):
    """ Naive local time follows `posix_tz` (via $TZ) inside the block. """
    saved = os.environ.get("TZ")
    os.environ["TZ"] = posix_tz
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


class LocalClock:
    """ Naive local time (the zone set through $TZ). """

    def at(self, instant):
        """ The datetime to pass to next_fire() for an aware UTC instant. """
        return datetime.datetime.fromtimestamp(instant.timestamp())

    def to_utc(self, fire):
        """ What next_fire() returned, checked for its kind, in UTC. """
        assert fire.tzinfo is None
        return fire.astimezone(UTC)

    def offset(self, seconds):
        """ The UTC offset at POSIX time `seconds`, in seconds. """
        return time.localtime(seconds).tm_gmtoff

    def timestamp(self, wall):
        """ The POSIX time of a naive wall time (`fold` picks the pass). """
        return int(wall.timestamp())

    def wall(self, seconds):
        """ The naive wall time at POSIX time `seconds`. """
        return datetime.datetime.fromtimestamp(seconds)


class ZoneClock:
    """ Aware datetimes in a zoneinfo zone (the methods of LocalClock). """

    def __init__(self, key):
        self.zone = zoneinfo.ZoneInfo(key)

    def at(self, instant):
        return instant.astimezone(self.zone)

    def to_utc(self, fire):
        assert fire.tzinfo is self.zone
        return fire.astimezone(UTC)

    def offset(self, seconds):
        return datetime.datetime.fromtimestamp(seconds, self.zone).utcoffset() // SECOND

    def timestamp(self, wall):
        return int(wall.replace(tzinfo=self.zone).timestamp())

    def wall(self, seconds):
        return datetime.datetime.fromtimestamp(seconds, self.zone).replace(tzinfo=None)


@contextlib.contextmanager
def clock(kind, key):
    """ A clock of that kind for the zone `key`. """
    if kind == "posix":
        with local_zone(ZONES[key]):
            yield LocalClock()
    else:
        yield ZoneClock(key)


@pytest.fixture(params=KINDS)
def berlin(request):
    with clock(request.param, "Europe/Berlin") as berlin:
        yield berlin


def one_second_later(moment):
    """ One real second later. (`moment + SECOND` adds to the wall clock and
        drops `fold`: in the second pass of a repeated hour it goes back an hour.) """
    return datetime.datetime.fromtimestamp(moment.timestamp() + 1, moment.tzinfo)


def march(schedule, start, count, clock=None):
    """ The first `count` fire times from `start` on, asking for each from the last + 1 s. """
    fires, after = [], clock.at(start) if clock else start
    for _ in range(count):
        fire = schedule.next_fire(after)
        if fire is None:
            break
        fires.append(fire)
        after = one_second_later(fire)
    return [clock.to_utc(fire) for fire in fires] if clock else fires


#: (zone, schedule, start, the fires from there on), all instants in UTC.
DST_GOLDEN = [
    # Spring: a skipped wall time fires once, at its pre-jump instant ...
    ("Europe/Berlin", "hour=2 minute=30", "2024-03-30 23:00",
     ["2024-03-31 01:30", "2024-04-01 00:30"]),
    ("Europe/Berlin", "hour=2", "2024-03-30 23:00", ["2024-03-31 01:00", "2024-04-01 00:00"]),
    ("US/Eastern", "hour=2 minute=30", "2024-03-10 05:00",
     ["2024-03-10 07:30", "2024-03-11 06:30"]),
    ("Europe/Berlin", "month=3 'day=last sun' hour=2 minute=30", "2023-06-01 00:00",
     ["2024-03-31 01:30", "2025-03-30 01:30"]),
    # ... even when the search starts after the jump,
    ("Europe/Berlin", "hour=2 minute=30", "2024-03-31 01:10",
     ["2024-03-31 01:30", "2024-04-01 00:30"]),
    # and intervals carry on after the gap.
    ("Europe/Berlin", "minute=*/30", "2024-03-31 00:35",
     ["2024-03-31 01:00", "2024-03-31 01:30", "2024-03-31 02:00"]),
    ("US/Eastern", "minute=*/30", "2024-03-10 06:35",
     ["2024-03-10 07:00", "2024-03-10 07:30", "2024-03-10 08:00"]),
    # Autumn: the repeated hour fires in both passes.
    ("Europe/Berlin", "hour=2 minute=30", "2024-10-26 22:00",
     ["2024-10-27 00:30", "2024-10-27 01:30", "2024-10-28 01:30"]),
    ("Europe/Berlin", "hour=2 minute=30", "2024-10-27 00:30:01",
     ["2024-10-27 01:30", "2024-10-28 01:30"]),
    ("Europe/Berlin", "month=10 'day=last sun' hour=2 minute=30", "2024-01-01 00:00",
     ["2024-10-27 00:30", "2024-10-27 01:30", "2025-10-26 00:30"]),
    ("Europe/Berlin", "month=10 day_of_week=sun hour=2", "2024-10-27 00:40",
     ["2024-10-27 01:00", "2025-10-05 00:00"]),
    ("US/Eastern", "month=11 'day=1st sun' hour=1 minute=30", "2013-11-03 05:40",
     ["2013-11-03 06:30", "2014-11-02 05:30"]),
    ("Europe/Berlin", "hour=*", "2024-10-26 23:30",
     ["2024-10-27 00:00", "2024-10-27 01:00", "2024-10-27 02:00"]),
    ("Europe/Berlin", "minute=*/30", "2024-10-26 23:45",
     ["2024-10-27 00:00", "2024-10-27 00:30", "2024-10-27 01:00",
      "2024-10-27 01:30", "2024-10-27 02:00"]),
    ("Europe/Berlin", "hour=3", "2024-10-26 22:00", ["2024-10-27 02:00", "2024-10-28 02:00"]),
    ("US/Eastern", "hour=1 minute=30", "2013-11-03 04:00",
     ["2013-11-03 05:30", "2013-11-03 06:30", "2013-11-04 06:30"]),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("key, text, start, expected", DST_GOLDEN)
def test_dst_fire_times_match_the_golden_table(kind, key, text, start, expected):
    with clock(kind, key) as local:
        fires = march(CronSchedule(text), utc(start), len(expected), local)
    assert fires == [utc(fire) for fire in expected]


def test_a_fixed_time_job_fires_twice_in_the_repeated_autumn_hour(berlin):
    schedule = CronSchedule("hour=2 minute=30")
    first = schedule.next_fire(berlin.at(utc("2024-10-27 00:00")))
    second = schedule.next_fire(one_second_later(first))
    assert (first.hour, first.minute, first.fold) == (2, 30, 0)
    assert (second.hour, second.minute, second.fold) == (2, 30, 1)
    assert berlin.to_utc(second) - berlin.to_utc(first) == datetime.timedelta(hours=1)


def test_an_interval_job_keeps_its_pace_through_the_repeated_hour(berlin):
    fires = march(CronSchedule("second=*/15"), utc("2024-10-26 23:59:00"), 4 * 60 * 3, berlin)
    assert fires[0] == utc("2024-10-26 23:59:00") and fires[-1] == utc("2024-10-27 02:58:45")
    assert {later - earlier for earlier, later in zip(fires, fires[1:])} == {15 * SECOND}


def test_a_search_from_the_first_pass_finds_the_second_pass(berlin):
    # 02:40 CEST: the next half hour is 02:00 CET, the repeated hour's start.
    fire = CronSchedule("minute=*/30").next_fire(berlin.at(utc("2024-10-27 00:40")))
    assert (fire.hour, fire.minute, fire.fold) == (2, 0, 1)
    assert berlin.to_utc(fire) == utc("2024-10-27 01:00")


def test_a_skipped_wall_time_comes_back_as_the_real_wall_time_of_its_instant(berlin):
    fire = CronSchedule("hour=2 minute=30").next_fire(berlin.at(utc("2024-03-31 00:00")))
    assert (fire.hour, fire.minute, fire.fold) == (3, 30, 0)


def test_a_naive_time_in_the_second_pass_stays_in_the_second_pass():
    with local_zone(ZONES["Europe/Berlin"]):
        schedule = CronSchedule("minute=*/30")
        fire = schedule.next_fire(datetime.datetime(2024, 10, 27, 2, 40, fold=1))
        assert fire == datetime.datetime(2024, 10, 27, 3, 0) and fire.fold == 0
        fire = schedule.next_fire(datetime.datetime(2024, 10, 27, 2, 40, fold=0))
        assert fire == datetime.datetime(2024, 10, 27, 2, 0) and fire.fold == 1


def test_adding_a_second_on_the_wall_clock_would_go_back_an_hour(berlin):
    # Why callers must step past a fire time in real time (one_second_later).
    second_pass = CronSchedule("hour=2 minute=30").next_fire(berlin.at(utc("2024-10-27 01:00")))
    assert second_pass.fold == 1
    assert berlin.to_utc(second_pass + SECOND) == utc("2024-10-27 00:30:01")


_WALLS = {}


def _walls_around(kind, key, transition):
    """ (instant, wall time) for every second of the 6 hours around a transition,
        plus each wall time the jump skips at its pre-jump instant: the DST
        policy spelt out second by second. """
    if (kind, key, transition) not in _WALLS:
        start = int(utc(transition).timestamp()) - 3 * 3600
        walls = []
        with clock(kind, key) as local:
            before = local.offset(start - 1)
            for instant in range(start, start + 6 * 3600):
                offset = local.offset(instant)
                walls.append((instant, (instant + offset) % 86400))
                walls.extend((instant + skipped - before, (instant + skipped) % 86400)
                             for skipped in range(before, offset))
                before = offset
        _WALLS[kind, key, transition] = start, start + 6 * 3600, walls
    return _WALLS[kind, key, transition]


def _policy_fires(kind, key, transition, hours, minutes, seconds):
    """ The instants in the window at which the policy fires the schedule. """
    start, end, walls = _walls_around(kind, key, transition)
    wanted = {h * 3600 + m * 60 + s for h in hours for m in minutes for s in seconds}
    return start, end, sorted({instant for instant, wall in walls
                               if wall in wanted and instant < end})


ALL = range(60)
MARCH_SCHEDULES = [
    ("second=*/15", range(24), ALL, range(0, 60, 15)),
    ("minute=*/30", range(24), (0, 30), (0,)),
    ("minute=*/7 second=30", range(24), range(0, 60, 7), (30,)),
    ("hour=2 minute=30", (2,), (30,), (0,)),
    ("hour=1-3 minute=*/20", range(1, 4), (0, 20, 40), (0,)),
    ("hour=*", range(24), (0,), (0,)),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("key, transition", TRANSITIONS)
@pytest.mark.parametrize("text, hours, minutes, seconds", MARCH_SCHEDULES)
def test_marching_through_a_transition_fires_exactly_as_the_policy_says(
        kind, key, transition, text, hours, minutes, seconds):
    start, end, expected = _policy_fires(kind, key, transition, hours, minutes, seconds)
    schedule, fires = CronSchedule(text), []
    with clock(kind, key) as local:
        after = local.at(datetime.datetime.fromtimestamp(start, UTC))
        while True:
            fire = schedule.next_fire(after)
            instant = int(local.to_utc(fire).timestamp())
            if instant >= end:
                break
            assert not fires or instant > fires[-1], "went backwards or got stuck"
            fires.append(instant)
            after = one_second_later(fire)
    assert fires == expected


def _some_of(values):
    return st.one_of(st.just(None), st.lists(st.sampled_from(values), min_size=1, max_size=3))


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(KINDS), where=st.sampled_from(TRANSITIONS),
       hours=_some_of(range(24)), minutes=_some_of(range(60)), seconds=_some_of(range(60)),
       delay=st.integers(0, 4 * 3600), fraction=st.integers(0, 999999))
def test_next_fire_is_the_first_instant_the_policy_allows_from_any_start(
        kind, where, hours, minutes, seconds, delay, fraction):
    fields = {"hour": hours, "minute": minutes, "second": seconds}
    text = " ".join(f"{name}={','.join(map(str, values)) if values else '*'}"
                    for name, values in fields.items())
    allowed = (hours or range(24), minutes or range(60), seconds or range(60))
    start, end, fires = _policy_fires(kind, *where, *allowed)
    after = datetime.datetime.fromtimestamp(start + delay, UTC).replace(microsecond=fraction)
    expected = [fire for fire in fires if fire >= after.timestamp()]
    with clock(kind, where[0]) as local:
        fire = CronSchedule(text).next_fire(local.at(after))
        instant = local.to_utc(fire).timestamp()
    if expected:
        assert instant == expected[0], text
    else:
        assert instant >= end, text


def _instants_of(wall, local):
    """ The instants at which the policy fires a matching naive wall time. """
    instants = {local.timestamp(wall.replace(fold=fold)) for fold in (0, 1)}
    real = {instant for instant in instants if local.wall(instant) == wall}
    if real:
        return real     # one, or two in a repeated hour
    # Skipped by a jump: fold=0 reads it with the offset from before the jump.
    return {local.timestamp(wall.replace(fold=0))}


def _policy_next_fire(text, after, local):
    """ next_fire() spelt out: the first instant at or after `after` (POSIX
        seconds) that a matching wall time maps to. Matching wall times come
        from the UTC schedule, i.e. pure wall-clock arithmetic. """
    walls, best = CronSchedule(text), None
    wall = datetime.datetime.fromtimestamp(after - 86400, UTC)   # offsets are < 1 day
    while True:
        wall = walls.next_fire(wall)
        if wall is None or (best is not None and wall.timestamp() - 86400 > best):
            return best
        for instant in _instants_of(wall.replace(tzinfo=None), local):
            if instant >= after and (best is None or instant < best):
                best = instant
        wall += SECOND


_DST_FIELDS = {
    "month": st.sampled_from(("*", "3", "10", "11", "3,10,11", "3-10", "1-6")),
    "day": st.sampled_from(("*", "'last sun'", "'2nd sun'", "'1st sun'", "25-31", "1-14")),
    "day_of_week": st.sampled_from(("*", "sun", "sat-sun")),
    "hour": st.sampled_from(("*", "0", "1", "2", "3", "1-3", "2,3", "*/2", "23")),
    "minute": st.sampled_from(("*/30", "0", "30", "59", "15,45")),
    "second": st.sampled_from(("0", "30", "59")),
}


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS), key=st.sampled_from(sorted(ZONES)),
       fields=st.fixed_dictionaries({}, optional=_DST_FIELDS).filter(bool),
       near=st.sampled_from([utc(when) for _, when in TRANSITIONS]),    # of either zone
       delay=st.one_of(st.integers(-3600, 2 * 3600),                 # at a transition
                       st.integers(-2 * 86400, 2 * 86400),           # around it
                       st.integers(-400 * 86400, 400 * 86400)),      # a year or so away
       fraction=st.integers(0, 999999))
def test_next_fire_over_months_and_years_follows_the_policy(
        kind, key, fields, near, delay, fraction):
    if "minute" not in fields and "second" not in fields:
        fields = {**fields, "minute": "0"}      # keep the reference walk short
    text = " ".join(f"{name}={value}" for name, value in fields.items())
    after = near + datetime.timedelta(seconds=delay, microseconds=fraction)
    with clock(kind, key) as local:
        fire = CronSchedule(text).next_fire(local.at(after))
        expected = _policy_next_fire(text, math.ceil(after.timestamp()), local)
        assert (fire and local.to_utc(fire).timestamp()) == expected, text


###############################################################################
# Speed #######################################################################
###############################################################################

@pytest.mark.parametrize("text", ["second=*/15", "minute=*", "hour=12 'day=3rd sun'"])
def test_next_fire_takes_well_under_a_millisecond(text):
    schedule, after = CronSchedule(text), datetime.datetime(2024, 10, 20)
    with local_zone(ZONES["Europe/Berlin"]):
        began = time.perf_counter()
        for _ in range(500):
            after = one_second_later(schedule.next_fire(after))
        assert (time.perf_counter() - began) / 500 < 0.001
