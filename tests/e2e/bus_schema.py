#!/usr/bin/python3
"""bus_schema.py - capture choir's real bus messages from RabbitMQ's firehose
and validate every layer against the Choria protocol v1 JSON schemas.

Run by tests/e2e/bus_schema.sh with Debian's /usr/bin/python3 (it needs
python3-pika and python3-jsonschema, and the openssl command).

  bus_schema.py capture --host H --port P --vhost V --user U --out FILE
                        --ready FILE [--seconds N]
      (password in $BUS_SCHEMA_PASSWORD) binds a private queue to
      amq.rabbitmq.trace with "publish.#" (the broker's firehose must be on:
      rabbitmqctl trace_on) and writes one JSON line per published message:
      {"exchange", "routing_keys", "properties", "body_b64"}.  Creates the
      ready file once it consumes; stops on SIGTERM/SIGINT or after N seconds.

  bus_schema.py validate --schemas DIR --capture FILE [--actions a,b,c]
      decodes each captured body layer by layer - transport -> base64 data ->
      secure request/reply -> request/reply -> RPC body - validates each
      layer against its schema in DIR (transport.json, secure_request.json,
      secure_reply.json, request.json, reply.json), and checks what the
      schemas cannot say: `data` is base64 without newlines, `message` is raw
      JSON text (not base64), the request envelope has exactly its 8 keys,
      signatures verify over the exact message bytes with the sender's own
      certificate, reply hashes match, requests carry the AMQP expiration
      (ttl + 10) * 1000 and reply_to, every request got its reply.
      Prints "ok - ..." / "FAIL - ..." lines and
      "bus_schema.py: N passed, M failed"; exit 1 on failures.
"""
import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

BASE64_RE = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
REQUESTID_RE = re.compile(r"^[0-9a-f]{32}$")
ENVELOPE_KEYS = {"requestid", "senderid", "callerid", "collective", "agent", "ttl", "time",
                 "filter"}
SCHEMA_FILES = ["transport.json", "secure_request.json", "secure_reply.json", "request.json",
                "reply.json"]


# ---- capture ---------------------------------------------------------------

def _text(value):
    """AMQP table values as JSON-able data (pika gives bytes for some)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_text(v) for v in value]
    return value


def capture(args):
    import pika  # python3-pika: imported here so `validate` does not need it

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    creds = pika.PlainCredentials(args.user, os.environ.get("BUS_SCHEMA_PASSWORD", ""))
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        host=args.host, port=args.port, virtual_host=args.vhost, credentials=creds))
    ch = conn.channel()
    queue = ch.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
    ch.queue_bind(queue=queue, exchange="amq.rabbitmq.trace", routing_key="publish.#")
    out = open(args.out, "w", encoding="utf-8")

    def on_message(_ch, _method, props, body):
        headers = _text(props.headers or {})
        record = {"exchange": headers.get("exchange_name", ""),
                  "routing_keys": headers.get("routing_keys", []),
                  "properties": headers.get("properties", {}),
                  "body_b64": base64.b64encode(body).decode("ascii")}
        out.write(json.dumps(record) + "\n")
        out.flush()

    ch.basic_consume(queue=queue, on_message_callback=on_message, auto_ack=True)
    open(args.ready, "w").close()
    deadline = time.monotonic() + args.seconds
    while not stop and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.2)
    out.close()
    conn.close()
    return 0


# ---- validation helpers ------------------------------------------------------

class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, details=()):
        print(("ok - " if ok else "FAIL - ") + what)
        for line in details:
            print("       " + line)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def load_schemas(directory):
    import jsonschema  # python3-jsonschema

    validators = {}
    for name in SCHEMA_FILES:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft4Validator)
        cls.check_schema(schema)
        validators[name[:-5]] = cls(schema)
    return validators


def openssl(args, stdin=None):
    return subprocess.run(["openssl"] + args, input=stdin, capture_output=True, check=False)


def cert_cn(pem):
    """The certificate's CN, or None."""
    r = openssl(["x509", "-noout", "-subject", "-nameopt", "RFC2253"], pem.encode())
    m = re.search(r"CN=([^,\n]+)", r.stdout.decode(errors="replace"))
    return m.group(1) if r.returncode == 0 and m else None


def signature_ok(pem, message, signature_b64):
    """RSA PKCS#1 v1.5 SHA-256 over the exact message bytes, checked by openssl."""
    with tempfile.TemporaryDirectory() as d:
        cert, key, msg, sig = (os.path.join(d, n) for n in ("cert", "key", "msg", "sig"))
        with open(cert, "w", encoding="ascii") as f:
            f.write(pem)
        with open(msg, "wb") as f:
            f.write(message.encode("utf-8"))
        with open(sig, "wb") as f:
            f.write(base64.b64decode(signature_b64, validate=True))
        if openssl(["x509", "-pubkey", "-noout", "-in", cert, "-out", key]).returncode != 0:
            return False
        return openssl(["dgst", "-sha256", "-verify", key, "-signature", sig, msg]).returncode == 0


def schema_errors(validator, doc):
    return ["schema: %s at /%s" % (e.message, "/".join(str(p) for p in e.path))
            for e in validator.iter_errors(doc)]


def raw_json_text(value, what, errors):
    """`message` must be the JSON object text itself, not base64 of it."""
    if not isinstance(value, str) or not value.lstrip().startswith("{"):
        errors.append("%s is not raw JSON text (base64?): %.60r" % (what, value))
        return None
    try:
        doc = json.loads(value)
    except ValueError as e:
        errors.append("%s is not JSON: %s" % (what, e))
        return None
    if not isinstance(doc, dict):
        errors.append("%s is not a JSON object" % what)
        return None
    return doc


# ---- one captured message ------------------------------------------------------

class Message:
    """One captured publish, decoded layer by layer; `errors` lists what is wrong."""

    def __init__(self, record, validators):
        self.record = record
        self.v = validators
        self.errors = []
        self.layers = []     # names of the layers that validated
        self.kind = None     # "request" or "reply"
        self.transport = self.secure = self.inner = self.body = None
        self.decode()

    def layer(self, name, doc):
        errs = schema_errors(self.v[name], doc)
        self.errors += ["%s %s" % (name, e) for e in errs]
        if not errs:
            self.layers.append(name)

    def decode(self):
        try:
            self.transport = json.loads(base64.b64decode(self.record["body_b64"]))
        except ValueError as e:
            self.errors.append("transport is not JSON: %s" % e)
            return
        self.layer("transport", self.transport)
        data = self.transport.get("data") if isinstance(self.transport, dict) else None
        if not isinstance(data, str) or not BASE64_RE.match(data):
            self.errors.append("transport data is not base64 without newlines: %.60r" % data)
            return
        try:
            self.secure = json.loads(base64.b64decode(data, validate=True))
        except (ValueError, binascii.Error) as e:
            self.errors.append("secure document is not JSON: %s" % e)
            return
        self.decode_secure()

    def decode_secure(self):
        proto = self.secure.get("protocol") if isinstance(self.secure, dict) else None
        if proto == "choria:secure:request:1":
            self.kind = "request"
        elif proto == "choria:secure:reply:1":
            self.kind = "reply"
        else:
            self.errors.append("unknown secure protocol %r" % proto)
            return
        self.layer("secure_" + self.kind, self.secure)
        self.inner = raw_json_text(self.secure.get("message"), "secure message", self.errors)
        if self.inner is None:
            return
        self.layer(self.kind, self.inner)
        self.body = raw_json_text(self.inner.get("message"), self.kind + " message", self.errors)
        if self.kind == "request":
            self.check_request()
        else:
            self.check_reply()

    @property
    def env(self):
        e = self.inner.get("envelope") if isinstance(self.inner, dict) else None
        return e if isinstance(e, dict) else {}

    def check_signature(self, certname):
        pem, sig = self.secure.get("pubcert"), self.secure.get("signature")
        if not isinstance(pem, str) or not isinstance(sig, str):
            self.errors.append("no signature and pubcert")
            return
        if not BASE64_RE.match(sig):
            self.errors.append("signature is not base64 without newlines")
        elif not signature_ok(pem, self.secure["message"], sig):
            self.errors.append("signature does not verify over the exact message bytes")
        cn = cert_cn(pem)
        if cn != certname:
            self.errors.append("pubcert CN %r is not the sender %r" % (cn, certname))

    def check_request(self):
        env, props = self.env, self.record.get("properties", {})
        if set(env) != ENVELOPE_KEYS:
            self.errors.append("envelope keys %s, expected exactly %s"
                               % (sorted(env), sorted(ENVELOPE_KEYS)))
        if not REQUESTID_RE.match(str(env.get("requestid"))):
            self.errors.append("requestid %r is not 32 lowercase hex" % env.get("requestid"))
        callerid = str(env.get("callerid", ""))
        if not callerid.startswith("choria="):
            self.errors.append("callerid %r lacks choria=" % callerid)
        self.check_signature(callerid[len("choria="):])
        if self.body is not None and not {"agent", "action", "caller", "data"} <= set(self.body):
            self.errors.append("RPC body keys %s" % sorted(self.body))
        ttl = env.get("ttl")
        if str(props.get("expiration")) != str(((ttl if isinstance(ttl, int) else 0) + 10) * 1000):
            self.errors.append("AMQP expiration %r, expected (ttl + 10) * 1000 with ttl %r"
                               % (props.get("expiration"), ttl))
        if props.get("reply_to") != self.transport.get("headers", {}).get("reply-to"):
            self.errors.append("AMQP reply_to %r is not the transport's reply-to"
                               % props.get("reply_to"))

    def check_reply(self):
        message = self.secure.get("message", "")
        digest = base64.b64encode(hashlib.sha256(message.encode("utf-8")).digest()).decode()
        if self.secure.get("hash") != digest:
            self.errors.append("hash is not base64(sha256(message))")
        self.check_signature(self.env.get("senderid"))
        if self.body is not None and not {"statuscode", "statusmsg", "data"} <= set(self.body):
            self.errors.append("RPC reply keys %s" % sorted(self.body))

    def describe(self):
        env, body = self.env, self.body or {}
        if self.kind == "request":
            return "request %s.%s %s to %s" % (env.get("agent"), body.get("action"),
                                              env.get("requestid"), self.record["exchange"])
        if self.kind == "reply":
            return "reply %s from %s (statuscode %s)" % (env.get("requestid"), env.get("senderid"),
                                                       body.get("statuscode"))
        return "message to %r" % self.record.get("exchange")


# ---- validate ----------------------------------------------------------------

def validate(args):
    report = Report()
    validators = load_schemas(args.schemas)
    with open(args.capture, encoding="utf-8") as f:
        messages = [Message(json.loads(line), validators) for line in f if line.strip()]
    report.check(len(messages) > 0, "captured %d messages from the firehose" % len(messages))
    for m in messages:
        report.check(not m.errors, "%s: every layer valid (validated: %s)"
                     % (m.describe(), ", ".join(m.layers) or "none"),
                     m.errors)
    for layer in ["transport", "secure_request", "secure_reply", "request", "reply"]:
        n = sum(layer in m.layers for m in messages)
        report.check(n > 0, "%d messages validated against %s.json" % (n, layer))
    for kind in ["request", "reply"]:
        n = sum(m.kind == kind and "transport" in m.layers for m in messages)
        report.check(n > 0, "%d %s transports validated against transport.json" % (n, kind))
    check_pairs(report, messages, args.actions.split(",") if args.actions else [])
    print("bus_schema.py: %d passed, %d failed" % (report.passed, report.failed))
    return 1 if report.failed else 0


def check_pairs(report, messages, actions):
    """Every request got a reply to its reply-to; each wanted action was seen."""
    replies = {}
    for m in messages:
        if m.kind == "reply":
            replies.setdefault(m.env.get("requestid"), []).append(m)
    for m in messages:
        if m.kind != "request":
            continue
        rid, reply_to = m.env.get("requestid"), m.transport.get("headers", {}).get("reply-to")
        got = replies.get(rid, [])
        on_queue = all(r.record["exchange"] == "" and r.record["routing_keys"] == [reply_to]
                       for r in got)
        report.check(bool(got) and on_queue,
                     "request %s was answered on its reply queue %s (%d replies)"
                     % (rid, reply_to, len(got)))
    seen = {(m.body or {}).get("action") for m in messages if m.kind == "request"}
    for action in actions:
        report.check(action in seen, "a %s request was captured" % action)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--vhost", required=True)
    c.add_argument("--user", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--ready", required=True)
    c.add_argument("--seconds", type=float, default=120)
    v = sub.add_parser("validate")
    v.add_argument("--schemas", required=True)
    v.add_argument("--capture", required=True)
    v.add_argument("--actions", default="")
    args = p.parse_args()
    return capture(args) if args.cmd == "capture" else validate(args)


if __name__ == "__main__":
    sys.exit(main())
