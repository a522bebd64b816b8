"""Prints a UserSig for the simulator's published key and administrator,
valid for ten years (the algorithm of src/probe/tencent/usersig.rs), for
bench/probe.sh's phase 5, whose `http` targets cannot mint one per request."""
import base64, hashlib, hmac, json, sys, time, zlib
key, ident, app = "improbe-simulator-key-not-a-secret", "administrator", 1400000000
t, exp = int(time.time()), 10 * 365 * 86400
content = f"TLS.identifier:{ident}\nTLS.sdkappid:{app}\nTLS.time:{t}\nTLS.expire:{exp}\n"
sig = base64.b64encode(hmac.new(key.encode(), content.encode(), hashlib.sha256).digest()).decode()
doc = json.dumps({"TLS.ver": "2.0", "TLS.identifier": ident, "TLS.sdkappid": app, "TLS.expire": exp, "TLS.time": t, "TLS.sig": sig}, separators=(",", ":"))
b = base64.b64encode(zlib.compress(doc.encode())).decode()
print(b.replace("+", "*").replace("/", "-").replace("=", "_"))
