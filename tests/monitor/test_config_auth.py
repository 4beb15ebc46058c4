"""PageConfig's rules and the access and input checks of makerlab.monitor.auth."""

from __future__ import annotations

import pytest

from makerlab.errors import ConfigError
from makerlab.monitor import Monitor, PageConfig
from makerlab.monitor.auth import Access, Refusal, kill_request, presented

TOKEN = "a-token-of-twenty-chars"


def test_local_by_default_with_a_made_up_token_for_the_kill_switch():
    config = PageConfig()
    assert config.host == "127.0.0.1" and config.local
    assert config.generated and len(config.token or "") >= 16
    assert PageConfig().token != config.token
    assert config.token not in repr(config)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "127.0.0.2", "example.org"])
def test_any_other_bind_needs_a_token(host):
    with pytest.raises(ConfigError, match="token is required"):
        PageConfig(host=host)
    assert PageConfig(host=host, token=TOKEN).token == TOKEN


@pytest.mark.parametrize("options", [{"token": "short"}, {"token": "has spaces in it !!!!"},
                                     {"port": -1}, {"port": 70000}, {"port": True},
                                     {"interval_s": 0}, {"interval_s": "1"}, {"history": 5},
                                     {"fills": 0}, {"depth": 0}, {"horizons_s": ()},
                                     {"horizons_s": (1, -5)}, {"host": ""}])
def test_bad_values_are_named(options):
    with pytest.raises(ConfigError, match=next(iter(options))):
        PageConfig(**options)


def test_unknown_keywords_raise():
    with pytest.raises(TypeError):
        PageConfig(prot=80)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Monitor(object(), None, prot=80)
    with pytest.raises(TypeError, match="either"):
        Monitor(object(), None, PageConfig(), port=1)


def test_looking_needs_the_token_off_localhost_and_a_wrong_one_is_always_refused():
    local, remote = Access(TOKEN, open_to_look=True), Access(TOKEN, open_to_look=False)
    assert local.check_look(None) is False and local.check_look(TOKEN) is True
    assert remote.check_look(TOKEN) is True
    for access, token in ((remote, None), (remote, TOKEN + "x"), (local, TOKEN + "x"),
                          (local, "")):
        with pytest.raises(Refusal) as refused:
            access.check_look(token)
        assert refused.value.status == 401


def test_acting_needs_the_token_as_a_header_from_the_pages_own_origin():
    access = Access(TOKEN, open_to_look=True)
    access.check_act(TOKEN, None, "127.0.0.1:1")
    access.check_act(TOKEN, "http://127.0.0.1:1", "127.0.0.1:1")
    for header, origin, status in ((None, None, 401), ("wrong-token-xxxxxxxx", None, 401),
                                   (TOKEN, "http://evil.example", 403)):
        with pytest.raises(Refusal) as refused:
            access.check_act(header, origin, "127.0.0.1:1")
        assert refused.value.status == status


def test_the_token_is_taken_from_header_query_or_cookie_and_nothing_else_is_accepted():
    access, cookie = Access(TOKEN, open_to_look=False), {"makerlab_token": TOKEN}
    assert presented({"X-Makerlab-Token": "h"}, cookie, {"token": "q"}, access) == "h"
    assert presented({}, cookie, {"token": "q"}, access) == "q"
    assert presented({}, cookie, {}, access) == TOKEN
    assert presented({}, {}, {}, access) is None
    with pytest.raises(Refusal, match="unknown query parameter"):
        presented({}, {}, {"token": "q", "admin": "1"}, access)


def test_a_cookie_of_another_token_is_ignored():
    """An earlier page on this host set it (cookies ignore the port; tokens are made up
    per run): on 127.0.0.1 the page still loads, elsewhere the token is asked for."""
    stale = {"makerlab_token": "an-earlier-pages-token-0123"}
    assert presented({}, stale, {}, Access(TOKEN, open_to_look=True)) is None


@pytest.mark.parametrize("body", [None, [], "yes", {}, {"confirm": False}, {"confirm": 1},
                                  {"confirm": True, "extra": 1},
                                  {"confirm": True, "note": 5},
                                  {"confirm": True, "note": "x" * 201},
                                  {"confirm": True, "note": "line\nbreak"}])
def test_a_kill_request_is_exactly_a_confirmation(body):
    with pytest.raises(Refusal) as refused:
        kill_request(body)
    assert refused.value.status == 400


def test_a_valid_kill_request_gives_its_note():
    assert kill_request({"confirm": True}) == ""
    assert kill_request({"confirm": True, "note": "desk closing"}) == "desk closing"
