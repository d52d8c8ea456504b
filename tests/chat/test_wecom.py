"""WeCom's callback crypto, with the values of WeCom's WXBizMsgCrypt samples."""

from __future__ import annotations

import pytest
from whale_chat import wecom
from whale_chat.errors import BadCallback, BadSignature
from whale_chat.replay import ReplayGuard

# From WeCom's callback documentation and WXBizMsgCrypt samples.
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP = "ww1436e0e65a779aee"
SAMPLE_ECHO = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
SAMPLE_MESSAGE = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew"
    "+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24Yhm"
    "ZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwo"
    "cugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
)


def crypto(token: str = "QDG6eK") -> wecom.WeComCrypto:
    return wecom.WeComCrypto(token, AES_KEY, CORP)


def test_the_documented_signature() -> None:
    encrypted = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    assert (
        wecom.signature("QDG6eK", "1409659589", "263014780", encrypted)
        == "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    )
    crypto().verify("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780", encrypted,
                    window=300, now=1409659589)  # fmt: skip


def test_the_documented_samples_decrypt() -> None:
    assert crypto().decrypt(SAMPLE_ECHO) == "1288432023552776189"
    message = wecom.parse_message(crypto().decrypt(SAMPLE_MESSAGE))
    assert (message.user, message.corp, message.msg_type, message.text) == (
        "ChenJiaShun",
        CORP,
        "text",
        "你好",
    )


def test_encrypt_pads_to_32_and_round_trips() -> None:
    sealed = crypto().encrypt("审批 wf-1.gate", random16=b"0123456789abcdef")
    import base64

    assert len(base64.b64decode(sealed)) % 32 == 0
    assert crypto().decrypt(sealed) == "审批 wf-1.gate"


def test_a_message_sealed_for_another_corp_is_refused() -> None:
    other = wecom.WeComCrypto("QDG6eK", AES_KEY, "ww-other")
    with pytest.raises(BadSignature, match="receiveid"):
        crypto().decrypt(other.encrypt("hi"))


def test_bad_signature_stale_timestamp_and_replay_are_401() -> None:
    sealed = crypto().encrypt("hi")
    good = wecom.signature("QDG6eK", "1000", "n1", sealed)
    with pytest.raises(BadSignature, match="does not match"):
        crypto().verify("0" * 40, "1000", "n1", sealed, window=300, now=1000)
    with pytest.raises(BadSignature, match="away from now"):
        crypto().verify(good, "1000", "n1", sealed, window=300, now=1000 + 301)
    guard = ReplayGuard(300)
    crypto().verify(good, "1000", "n1", sealed, window=300, guard=guard, now=1000)
    with pytest.raises(BadSignature, match="replay") as caught:
        crypto().verify(good, "1000", "n1", sealed, window=300, guard=guard, now=1001)
    assert caught.value.status == 401


def test_the_reply_is_encrypted_and_signed_the_same_way() -> None:
    reply = crypto().reply(wecom.text_reply("ann", CORP, "done ]]> ok", now=5), "1000", "n1")
    root = wecom.read_xml(reply, "reply")
    encrypted = root.findtext("Encrypt") or ""
    assert root.findtext("MsgSignature") == wecom.signature("QDG6eK", "1000", "n1", encrypted)
    assert wecom.parse_message(crypto().decrypt(encrypted)).text == "done ]]> ok"


def test_dtds_and_garbage_are_400s() -> None:
    with pytest.raises(BadCallback, match="DTD"):
        wecom.encrypted_of(b'<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>')
    with pytest.raises(BadCallback):
        wecom.encrypted_of(b"<xml>")
    with pytest.raises(BadCallback):
        crypto().decrypt("not base64!!")
    with pytest.raises(ValueError):
        wecom.WeComCrypto("t", "short", CORP)
