#!/usr/bin/env python3
"""An independent UserSig v2 verifier, written from Tencent's published
algorithm with Python's standard library only (no improbe code).

usage: usersig_verify.py TOKEN KEY SDKAPPID IDENTIFIER
exit 0 when the signature verifies, 1 with a reason otherwise.
"""
import base64
import hashlib
import hmac
import json
import sys
import zlib

token, key, sdkappid, identifier = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
raw = token.replace("*", "+").replace("-", "/").replace("_", "=")
doc = json.loads(zlib.decompress(base64.b64decode(raw)))
if doc.get("TLS.ver") != "2.0":
    sys.exit("wrong version")
if doc["TLS.sdkappid"] != sdkappid or doc["TLS.identifier"] != identifier:
    sys.exit("wrong app or identifier")
content = "TLS.identifier:%s\nTLS.sdkappid:%d\nTLS.time:%d\nTLS.expire:%d\n" % (
    identifier, sdkappid, doc["TLS.time"], doc["TLS.expire"])
expected = base64.b64encode(hmac.new(key.encode("utf-8"), content.encode("utf-8"), hashlib.sha256).digest()).decode()
if not hmac.compare_digest(expected, doc["TLS.sig"]):
    sys.exit("signature mismatch")
print("verified", doc["TLS.identifier"], doc["TLS.time"], doc["TLS.expire"])
