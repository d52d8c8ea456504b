"""Session cookies are sealed, expire, and open only with their key; roles compare in order."""

from __future__ import annotations

from whale_console.session import Sealer, csrf_ok, new_session


def test_a_sealed_session_opens_with_its_key_until_it_expires() -> None:
    sealer = Sealer("k")
    session = new_session(name="ann", role="operator", token="wht_1.s", via="token", hours=1, now=1000.0)
    cookie = sealer.seal(session)
    assert "wht_1.s" not in cookie
    assert sealer.open(cookie, now=1001.0) == session
    assert sealer.open(cookie, now=1000.0 + 3601) is None
    assert Sealer("other").open(cookie, now=1001.0) is None
    middle = len(cookie) // 2
    forged = cookie[:middle] + ("A" if cookie[middle] != "A" else "B") + cookie[middle + 1 :]
    assert sealer.open(forged, now=1001.0) is None  # (not a fixed suffix: the cookie may end with it)


def test_roles_include_the_ones_below() -> None:
    session = new_session(name="o", role="operator", token=None, via="dev", hours=1)
    assert session.may("viewer") and session.may("operator") and not session.may("author")
    assert not new_session(name="x", role="weird", token=None, via="token", hours=1).may("viewer")


def test_csrf_tokens_compare_exactly_and_the_sign_in_token_is_bound_to_its_nonce() -> None:
    session = new_session(name="o", role="viewer", token=None, via="token", hours=1)
    assert csrf_ok(session, session.csrf) and not csrf_ok(session, None) and not csrf_ok(session, "x")
    sealer = Sealer("k")
    assert sealer.login_csrf_ok("n1", sealer.login_csrf("n1"))
    assert not sealer.login_csrf_ok("n2", sealer.login_csrf("n1")) and not sealer.login_csrf_ok(None, "x")
