"""Reading Upstox error bodies: the one parser the client and the login flow share."""

from __future__ import annotations

import httpx

from expirytrack_dagster.upstox.errors import LOGIN_FIX, error_envelope


def _answer(status: int, **body: object) -> httpx.Response:
    return httpx.Response(status, **body)  # type: ignore[arg-type]


def test_reads_the_code_and_message_of_an_error_envelope() -> None:
    envelope = {"status": "error", "errors": [{"errorCode": "UDAPI1149", "message": "Plus only"}]}
    assert error_envelope(_answer(403, json=envelope)) == ("UDAPI1149", "Plus only")


def test_accepts_the_snake_case_spelling_of_the_code() -> None:
    envelope = {"status": "error", "errors": [{"error_code": "UDAPI100068", "message": "redirect"}]}
    assert error_envelope(_answer(400, json=envelope)) == ("UDAPI100068", "redirect")


def test_an_envelope_without_a_message_says_so() -> None:
    assert error_envelope(_answer(500, json={"errors": [{"errorCode": "X"}]})) == (
        "X",
        "no message",
    )


def test_a_body_of_another_shape_names_the_status_line() -> None:
    for body in ({"content": b"<html>Bad gateway</html>"}, {"json": {"errors": []}}, {"json": [1]}):
        code, message = error_envelope(_answer(502, **body))
        assert code is None
        assert message == "Bad Gateway (body is not an Upstox error envelope)"


def test_the_login_fix_names_both_remedies() -> None:
    assert "`expirytrack login`" in LOGIN_FIX and "UPSTOX_ACCESS_TOKEN" in LOGIN_FIX
