#!/usr/bin/python3
"""Makes tests/data/jwt/: test keys and vectors.json for libtb's JWT binding (tests/unit/test_jwt.c).

An independent implementation (PyJWT + pyca/cryptography, Debian python3-jwt and
python3-cryptography) signs every token, so the C code is checked against someone else's JWS.
Tokens PyJWT refuses to make (alg "none", HS256 MACed with a public key's PEM bytes, duplicate
claims, DER signatures, ...) are assembled by hand below from the same primitives.

Keys already in the directory are reused, so running this again only changes the tokens (ECDSA
signatures are randomized). Dev-time tool: the C tests read the files and never need python.
Every key here is a TEST key, public in this repository.

    tests/data/jwt/make-vectors.py      # from anywhere
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import secrets

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

DIR = os.path.dirname(os.path.abspath(__file__))
NOW = 1700000100          # the fixed "now" of every vector (policy->now)
IAT = 1700000000
FAR = 4102444800          # 2100-01-01: exp of the tokens that should stay valid
ISS = "https://idp.example"
AUD = "https://rp.example"
TBID = bytes(range(1, 70))            # a Token Binding ID (any bytes: only its hash matters)
OTHER_TBID = bytes(range(2, 71))


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def tbh_of(tbid):
    return b64u(hashlib.sha256(tbid).digest())


TBH, OTHER_TBH = tbh_of(TBID), tbh_of(OTHER_TBID)


def path(name):
    return os.path.join(DIR, name)


def write(name, data, mode=0o644):
    if isinstance(data, str):
        data = data.encode()
    with open(path(name), "wb") as f:
        f.write(data)
    os.chmod(path(name), mode)


def pem_private(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem_public(key):
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def private_key(name, make):
    """The private key in name, made (and written with its .pub.pem) when missing."""
    if not os.path.exists(path(name + ".key.pem")):
        key = make()
        write(name + ".key.pem", pem_private(key))
        write(name + ".pub.pem", pem_public(key.public_key()))
    with open(path(name + ".key.pem"), "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def secret(name):
    """A printable 48-character HMAC secret (no trailing newline in the file)."""
    if not os.path.exists(path(name)):
        write(name, secrets.token_urlsafe(36))
    with open(path(name), "rb") as f:
        return f.read()


def certificate(name, key):
    if os.path.exists(path(name)):
        return
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example test")])
    start = datetime.datetime(2023, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(1000).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=36500))
            .sign(key, hashes.SHA256()))
    write(name, cert.public_bytes(serialization.Encoding.PEM))


def jwk_ec(key, kid):
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64u(n.x.to_bytes(32, "big")), "y": b64u(n.y.to_bytes(32, "big"))}


def jwk_rsa(key, kid):
    n = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64u(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")),
            "e": b64u(n.e.to_bytes((n.e.bit_length() + 7) // 8, "big"))}


# --- keys ------------------------------------------------------------------------------------
es = private_key("es256", lambda: ec.generate_private_key(ec.SECP256R1()))
es_other = private_key("es256-other", lambda: ec.generate_private_key(ec.SECP256R1()))
rs = private_key("rs256", lambda: rsa.generate_private_key(65537, 2048))
rs_other = private_key("rs256-other", lambda: rsa.generate_private_key(65537, 2048))
# keys the loaders must refuse
private_key("rsa1024", lambda: rsa.generate_private_key(65537, 1024))
private_key("p384", lambda: ec.generate_private_key(ec.SECP384R1()))
private_key("ed25519", ed25519.Ed25519PrivateKey.generate)
certificate("es256.crt.pem", es)
hs = secret("hs256.secret")
hs_other = secret("hs256-other.secret")
if not os.path.exists(path("hs256-short.secret")):
    write("hs256-short.secret", secrets.token_urlsafe(12))      # 16 bytes: too short
write("jwks.json", json.dumps({"keys": [jwk_ec(es, "ec-1"), jwk_rsa(rs, "rsa-1")]}, indent=1))
with open(path("es256.pub.pem"), "rb") as f:
    ES_PUB_PEM = f.read()
with open(path("rs256.pub.pem"), "rb") as f:
    RS_PUB_PEM = f.read()
with open(path("jwks.json"), "rb") as f:
    JWKS_BYTES = f.read()


# --- tokens ----------------------------------------------------------------------------------
def claims(**over):
    c = {"iss": ISS, "aud": AUD, "sub": "alice", "iat": IAT, "exp": FAR, "cnf": {"tbh": TBH}}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def pyjwt(alg, key, c, kid=None):
    headers = {"kid": kid} if kid else None
    return jwt.encode(c, key, algorithm=alg, headers=headers)


def raw_sign(alg, key, signing_input):
    """JWS signature bytes made with cryptography / hmac directly (for hand-built tokens)."""
    if alg == "HS256":
        return hmac.new(key, signing_input, hashlib.sha256).digest()
    if alg == "RS256":
        return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    if alg == "ES256":
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    raise ValueError(alg)


def by_hand(header, payload, alg=None, key=None, sig=None):
    """header / payload: dicts (compact JSON) or str (the exact JSON text)."""
    enc = lambda x: b64u((x if isinstance(x, str) else json.dumps(x, separators=(",", ":")))
                         .encode())
    si = (enc(header) + "." + enc(payload)).encode()
    if sig is None:
        sig = raw_sign(alg, key, si) if alg else b""
    return si.decode() + "." + b64u(sig)


V = []


def vec(name, token, expect, keys="es256.pub.pem", algs=("ES256",), issuer=ISS, audience=AUD,
        leeway=0, tbh="provided", sub="alice", exp=FAR):
    v = {"name": name, "token": token, "keys": keys, "algs": list(algs), "issuer": issuer,
         "audience": audience, "leeway": leeway, "tbh": tbh, "expect": expect}
    if expect == "ok":
        v["sub"] = sub
        v["exp"] = exp
    V.append(v)


ok = pyjwt("ES256", es, claims())
vec("es256_ok", ok, "ok")
vec("es256_cert_ok", ok, "ok", keys="es256.crt.pem")
vec("es256_no_iss_aud_policy", ok, "ok", issuer=None, audience=None)
vec("rs256_ok", pyjwt("RS256", rs, claims()), "ok", keys="rs256.pub.pem", algs=["RS256"])
vec("hs256_ok", pyjwt("HS256", hs, claims()), "ok", keys="hs256.secret", algs=["HS256"])
vec("jwks_es256_kid_ok", pyjwt("ES256", es, claims(), kid="ec-1"), "ok", keys="jwks.json",
    algs=["ES256", "RS256"])
vec("jwks_rs256_kid_ok", pyjwt("RS256", rs, claims(), kid="rsa-1"), "ok", keys="jwks.json",
    algs=["ES256", "RS256"])
vec("jwks_es256_no_kid_ok", ok, "ok", keys="jwks.json", algs=["ES256", "RS256"])
vec("jwks_unknown_kid", pyjwt("ES256", es, claims(), kid="ec-9"), "unknown_key",
    keys="jwks.json", algs=["ES256", "RS256"])
vec("jwks_kid_of_other_type", pyjwt("ES256", es, claims(), kid="rsa-1"), "alg",
    keys="jwks.json", algs=["ES256", "RS256"])
vec("pem_set_ignores_kid", pyjwt("ES256", es, claims(), kid="anything"), "ok")
vec("alg_not_allowed", ok, "alg", keys="jwks.json", algs=["RS256"])
vec("alg_not_for_these_keys", pyjwt("RS256", rs, claims()), "alg", algs=["ES256", "RS256"])
vec("alg_es256_with_secret", ok, "alg", keys="hs256.secret", algs=["ES256", "HS256"])
vec("alg_none", by_hand({"alg": "none", "typ": "JWT"}, claims()), "alg",
    algs=["ES256"])
vec("alg_none_capital", by_hand({"alg": "None", "typ": "JWT"}, claims()), "alg")
vec("alg_hs512", by_hand({"alg": "HS512"}, claims(), sig=b"x" * 64), "alg",
    keys="hs256.secret", algs=["HS256"])
vec("alg_missing", by_hand({"typ": "JWT"}, claims(), "ES256", es), "alg")
vec("alg_not_string", by_hand({"alg": 7}, claims(), "ES256", es), "parse")
# algorithm confusion: HS256 "signed" with the bytes of the public key file the server holds
vec("confusion_hs256_es_pem", by_hand({"alg": "HS256", "typ": "JWT"}, claims(), "HS256",
                                      ES_PUB_PEM), "alg", algs=["ES256", "HS256"])
vec("confusion_hs256_rs_pem", by_hand({"alg": "HS256", "typ": "JWT"}, claims(), "HS256",
                                      RS_PUB_PEM), "alg", keys="rs256.pub.pem",
    algs=["RS256", "HS256"])
vec("confusion_hs256_jwks", by_hand({"alg": "HS256", "typ": "JWT"}, claims(), "HS256",
                                    JWKS_BYTES), "alg", keys="jwks.json",
    algs=["ES256", "RS256", "HS256"])
vec("wrong_key_es256", pyjwt("ES256", es_other, claims()), "signature")
vec("wrong_key_es256_jwks_kid", pyjwt("ES256", es_other, claims(), kid="ec-1"), "signature",
    keys="jwks.json", algs=["ES256", "RS256"])
vec("wrong_key_rs256", pyjwt("RS256", rs_other, claims()), "signature", keys="rs256.pub.pem",
    algs=["RS256"])
vec("wrong_secret_hs256", pyjwt("HS256", hs_other, claims()), "signature",
    keys="hs256.secret", algs=["HS256"])
h, p, s = ok.split(".")
vec("tampered_payload", h + "." + b64u(json.dumps(claims(sub="mallory")).encode()) + "." + s,
    "signature")
sig = bytearray(base64.urlsafe_b64decode(s + "=="))
sig[10] ^= 1
vec("tampered_signature", h + "." + p + "." + b64u(bytes(sig)), "signature")
vec("signature_empty", h + "." + p + ".", "signature")
der = es.sign((h + "." + p).encode(), ec.ECDSA(hashes.SHA256()))
vec("es256_der_signature", h + "." + p + "." + b64u(der), "signature")
vec("signature_padded", ok + "=" * ((4 - len(s) % 4) % 4 or 4), "parse")
vec("expired", pyjwt("ES256", es, claims(exp=NOW - 3600)), "expired")
vec("exp_is_now", pyjwt("ES256", es, claims(exp=NOW)), "expired")
vec("expired_within_leeway", pyjwt("ES256", es, claims(exp=NOW - 30)), "ok", leeway=60,
    exp=NOW - 30)
vec("expired_beyond_leeway", pyjwt("ES256", es, claims(exp=NOW - 60)), "expired", leeway=60)
vec("nbf_future", pyjwt("ES256", es, claims(nbf=NOW + 3600)), "not_yet_valid")
vec("nbf_within_leeway", pyjwt("ES256", es, claims(nbf=NOW + 30)), "ok", leeway=60)
vec("nbf_is_now", pyjwt("ES256", es, claims(nbf=NOW)), "ok")
vec("iat_future", pyjwt("ES256", es, claims(iat=NOW + 3600)), "not_yet_valid")
vec("exp_missing", pyjwt("ES256", es, claims(exp=None)), "claim")
vec("exp_string", by_hand({"alg": "ES256"}, claims(exp=str(FAR)), "ES256", es), "claim")
vec("exp_bool", by_hand({"alg": "ES256"}, claims(exp=True), "ES256", es), "claim")
vec("exp_real", by_hand({"alg": "ES256"}, claims(exp=FAR + 0.5), "ES256", es), "ok")
vec("nbf_string", by_hand({"alg": "ES256"}, claims(nbf="0"), "ES256", es), "claim")
vec("cnf_missing", pyjwt("ES256", es, claims(cnf=None)), "unbound")
vec("cnf_without_tbh", pyjwt("ES256", es, claims(cnf={"jkt": TBH})), "unbound")
vec("cnf_string", pyjwt("ES256", es, claims(cnf=TBH)), "claim")
vec("cnf_tbh_number", pyjwt("ES256", es, claims(cnf={"tbh": 5})), "claim")
vec("tbh_other_id", pyjwt("ES256", es, claims(cnf={"tbh": OTHER_TBH})), "mismatch")
vec("tbh_short", pyjwt("ES256", es, claims(cnf={"tbh": TBH[:20]})), "mismatch")
vec("tbh_checked_against_other", ok, "mismatch", tbh="other")
vec("iss_other", pyjwt("ES256", es, claims(iss="https://evil.example")), "claim")
vec("iss_missing", pyjwt("ES256", es, claims(iss=None)), "claim")
vec("iss_number", by_hand({"alg": "ES256"}, claims(iss=1), "ES256", es), "claim", issuer=None)
vec("aud_other", pyjwt("ES256", es, claims(aud="https://other.example")), "claim")
vec("aud_missing", pyjwt("ES256", es, claims(aud=None)), "claim")
vec("aud_array_ok", pyjwt("ES256", es, claims(aud=["x", AUD])), "ok")
vec("aud_array_miss", pyjwt("ES256", es, claims(aud=["x", "y"])), "claim")
vec("aud_array_number", by_hand({"alg": "ES256"}, claims(aud=[AUD, 3]), "ES256", es), "claim")
vec("sub_missing", pyjwt("ES256", es, claims(sub=None)), "ok", sub="")
vec("sub_control_char", pyjwt("ES256", es, claims(sub="ali\nce")), "claim")
vec("sub_too_long", pyjwt("ES256", es, claims(sub="a" * 256)), "claim")
vec("sub_255", pyjwt("ES256", es, claims(sub="b" * 255)), "ok", sub="b" * 255)
vec("duplicate_claim", by_hand({"alg": "ES256"}, '{"exp":%d,"exp":%d,"sub":"alice","iss":"%s",'
                               '"aud":"%s","cnf":{"tbh":"%s"}}' % (NOW - 10, FAR, ISS, AUD, TBH),
                               "ES256", es), "parse")
vec("duplicate_header_alg", by_hand('{"alg":"HS256","alg":"ES256"}', claims(), "ES256", es),
    "parse")
vec("crit_header", by_hand({"alg": "ES256", "crit": ["exp"]}, claims(), "ES256", es), "parse")
vec("typ_other", by_hand({"alg": "ES256", "typ": "JOSE+JSON"}, claims(), "ES256", es), "parse")
vec("typ_lower_jwt", by_hand({"alg": "ES256", "typ": "jwt"}, claims(), "ES256", es), "ok")
vec("payload_array", by_hand({"alg": "ES256"}, "[1,2]", "ES256", es), "parse")
vec("payload_not_json", by_hand({"alg": "ES256"}, "exp=1", "ES256", es), "parse")
vec("header_not_json", "bm90IGpzb24." + p + "." + s, "parse")
vec("two_parts", h + "." + p, "parse")
vec("four_parts", ok + ".xx", "parse")
vec("bad_base64_char", h + "." + p[:-2] + "+/" + "." + s, "parse")
vec("empty", "", "parse")

doc = {
    "comment": "Made by make-vectors.py (PyJWT %s); keys are files in this directory. "
               "expect: 'ok' or a tb_strerror name; tbh: which ID the check is run "
               "against." % jwt.__version__,
    "now": NOW,
    "tbid": b64u(TBID), "tbh": TBH,
    "other_tbid": b64u(OTHER_TBID), "other_tbh": OTHER_TBH,
    "issuer": ISS, "audience": AUD,
    "vectors": V,
}
write("vectors.json", json.dumps(doc, indent=1) + "\n")
print("%d vectors in %s" % (len(V), path("vectors.json")))
