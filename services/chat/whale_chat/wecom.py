"""WeCom (企业微信) callbacks: the message signature, AES decryption and encrypted replies.

As WeCom documents its callback crypto (``WXBizMsgCrypt``): the AES key is the base64 of the
43-character EncodingAESKey plus ``=`` (32 bytes; the IV is its first 16); a message is
``random(16) + msg_len (4 bytes, network order) + msg + receiveid`` padded PKCS#7 to a multiple of
32 and encrypted AES-256-CBC, then base64; its signature is the SHA1 hex of the sorted, concatenated
token, timestamp, nonce and encrypted message. The URL check (GET) decrypts ``echostr`` and answers
its plain text; a message (POST, XML with ``Encrypt``) is decrypted, and the passive reply is
encrypted and signed the same way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time
from dataclasses import dataclass
from xml.etree import ElementTree

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from whale_chat.errors import BadCallback, BadSignature
from whale_chat.replay import ReplayGuard

BLOCK = 32  # WeCom pads to 32 bytes (not AES's 16)


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """SHA1 hex of the sorted, concatenated token, timestamp, nonce and encrypted message."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()  # noqa: S324 - WeCom's documented scheme


def aes_key(encoding_aes_key: str) -> bytes:
    if len(encoding_aes_key) != 43:
        raise ValueError("the WeCom EncodingAESKey has 43 characters")
    try:
        return base64.b64decode(encoding_aes_key + "=")
    except (binascii.Error, ValueError):
        raise ValueError("the WeCom EncodingAESKey is not base64") from None


class WeComCrypto:
    """One WeCom app's callback crypto (token, EncodingAESKey, receive id = the corp id)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id

    def encrypt(self, text: str, random16: bytes | None = None) -> str:
        raw = text.encode("utf-8")
        plain = (random16 or os.urandom(16)) + struct.pack(">I", len(raw)) + raw + self.receive_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise BadCallback("the encrypted message is not base64", field="Encrypt") from None
        if not data or len(data) % 16:
            raise BadCallback("the encrypted message is not whole AES blocks", field="Encrypt")
        decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or len(plain) < 20 + pad:
            raise BadCallback("the decrypted message has a bad padding", field="Encrypt")
        content = plain[16:-pad]
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise BadCallback("the decrypted message's length is wrong", field="Encrypt")
        message, receive_id = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise BadSignature("the message was sealed for another corp id (receiveid)", field="Encrypt")
        return message.decode("utf-8")

    def verify(
        self,
        msg_signature: str,
        timestamp: str,
        nonce: str,
        encrypted: str,
        *,
        window: int,
        guard: ReplayGuard | None = None,
        now: float | None = None,
    ) -> None:
        """Raise :class:`BadSignature` unless the signature matches, the timestamp is recent and new."""
        if not msg_signature or not timestamp or not nonce:
            raise BadSignature("msg_signature, timestamp and nonce are required", field="msg_signature")
        try:
            when = int(timestamp)
        except ValueError:
            raise BadSignature("timestamp must be unix seconds", field="timestamp") from None
        now = time.time() if now is None else now
        if abs(now - when) > window:
            raise BadSignature(
                f"the callback's timestamp is {int(now - when)} s away from now (accepted: {window} s)",
                field="timestamp",
            )
        expected = signature(self.token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected, msg_signature.lower()):
            raise BadSignature("msg_signature does not match", field="msg_signature")
        if guard is not None and not guard.first_time(f"wecom:{msg_signature}:{nonce}", now):
            raise BadSignature("this callback was received already (replay)", field="msg_signature")

    def reply(self, text_xml: str, timestamp: str, nonce: str) -> str:
        """The passive reply: ``text_xml`` encrypted and signed, in WeCom's reply envelope."""
        encrypted = self.encrypt(text_xml)
        sig = signature(self.token, timestamp, nonce, encrypted)
        return (
            f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )


@dataclass(frozen=True, slots=True)
class WeComMessage:
    """A decrypted message: who sent it (``FromUserName``), to which corp, and its text."""

    user: str
    corp: str
    msg_type: str
    text: str


def read_xml(body: bytes | str, what: str) -> ElementTree.Element:
    """Parse a small XML document; DTDs (and so entities) are refused."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise BadCallback(f"{what}: DTDs are not accepted", field="body")
    try:
        return ElementTree.fromstring(text)  # noqa: S314 - no DTD, size-limited by the caller
    except ElementTree.ParseError as exc:
        raise BadCallback(f"{what} is not XML: {exc}", field="body") from None


def encrypted_of(body: bytes) -> str:
    found = read_xml(body, "the callback").findtext("Encrypt")
    if not found:
        raise BadCallback("the callback has no Encrypt element", field="Encrypt")
    return found.strip()


def parse_message(plain: str) -> WeComMessage:
    root = read_xml(plain, "the decrypted message")
    user = (root.findtext("FromUserName") or "").strip()
    if not user:
        raise BadCallback("the message has no FromUserName", field="FromUserName")
    return WeComMessage(
        user=user,
        corp=(root.findtext("ToUserName") or "").strip(),
        msg_type=(root.findtext("MsgType") or "").strip(),
        text=(root.findtext("Content") or "").strip(),
    )


def text_reply(to_user: str, from_corp: str, content: str, now: int | None = None) -> str:
    """The plain reply message (a text) before encryption."""
    safe = content.replace("]]>", "]]]]><![CDATA[>")
    return (
        f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName><FromUserName><![CDATA[{from_corp}]]>"
        f"</FromUserName><CreateTime>{int(time.time()) if now is None else now}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{safe}]]></Content></xml>"
    )
