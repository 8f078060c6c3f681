#!/usr/bin/python3
"""agent_runs_forge.py - forged run events for tests/e2e/agent_runs.sh.

  agent_runs_forge.py --host H --port P --vhost V --user U (password in
      $FORGE_PASSWORD) --ca-dir DIR --job J --node NODE --other OTHER
      --run-id R [--collective C]

publishes to the exchange <C>_events, in this order, on one channel:

  1. a "finished" event claiming to be NODE's, unsigned (hash only, as a
     Choria reply may be);
  2. one claiming to be NODE's that carries NODE's own certificate (it is
     public) but is signed with OTHER's key;
  3. one claiming to be NODE's, signed by OTHER with OTHER's certificate;
  4. one that OTHER signed truthfully as OTHER, with routing key J.OTHER
     (a node that is not part of the job);
  5. the control: an "output" event signed by NODE's own key (the test CA
     holds every key), whose one line is CONTROL_TEXT.

Every forged finished event says success false and has "FORGED" in its
reason.  The layers are built here from the protocol (wire.h), so the
control shows that an event built this way is accepted when its signature
is right: what keeps 1-4 out is the signature check alone.  A console
reads its queue in order, so once it shows the control line it has judged
1-4.  Needs python3-pika and python3-cryptography.
"""
import argparse
import base64
import hashlib
import json
import os
import time

import pika
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

CONTROL_TEXT = "forgery control: signed by the node's own key"


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def identity(ca_dir, name):
    ssl = os.path.join(ca_dir, name, "ssl")
    with open(os.path.join(ssl, "certs", name + ".pem"), "rb") as f:
        cert = f.read().decode()
    with open(os.path.join(ssl, "private_keys", name + ".pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return cert, key


def transport(event, senderid, run_id, cert=None, key=None):
    """The three layers around one event; signed when key is given."""
    reply = compact({"protocol": "choria:reply:1", "message": compact(event),
                     "envelope": {"requestid": run_id, "senderid": senderid,
                                  "agent": "puppet", "time": int(time.time())}})
    raw = reply.encode()
    secure = {"protocol": "choria:secure:reply:1", "message": reply,
              "hash": base64.b64encode(hashlib.sha256(raw).digest()).decode()}
    if key is not None:
        sig = key.sign(raw, padding.PKCS1v15(), hashes.SHA256())
        secure["signature"] = base64.b64encode(sig).decode()
        secure["pubcert"] = cert
    return compact({"protocol": "choria:transport:1",
                    "data": base64.b64encode(compact(secure).encode()).decode(),
                    "headers": {"mc_sender": senderid}}).encode()


def forged_finished(job, run_id, how):
    return {"event": "finished", "job_id": job, "run_id": run_id, "seq": 99,
            "time": int(time.time() * 1000), "exit_code": 4, "signal": 0,
            "duration_ms": 1, "output_lines": 0, "output_skipped": 0,
            "verdict": {"verdict": "failed_resources", "success": False,
                        "correlation": "job_id", "reason": "FORGED " + how},
            "summary": None, "report": None, "failed": ["FORGED[" + how + "]"]}


def main():
    p = argparse.ArgumentParser()
    for opt in ("host", "port", "vhost", "user", "ca-dir", "job", "node", "other", "run-id"):
        p.add_argument("--" + opt, required=True)
    p.add_argument("--collective", default="mcollective")
    a = p.parse_args()

    node_cert, node_key = identity(a.ca_dir, a.node)
    other_cert, other_key = identity(a.ca_dir, a.other)
    key_node = a.job + "." + a.node
    messages = [
        (key_node, transport(forged_finished(a.job, a.run_id, "unsigned"), a.node, a.run_id)),
        (key_node, transport(forged_finished(a.job, a.run_id, "stolen certificate"), a.node,
                             a.run_id, node_cert, other_key)),
        (key_node, transport(forged_finished(a.job, a.run_id, "other node's signature"),
                             a.node, a.run_id, other_cert, other_key)),
        (a.job + "." + a.other, transport(forged_finished(a.job, a.run_id, "node not in the job"),
                                          a.other, a.run_id, other_cert, other_key)),
        (key_node, transport({"event": "output", "job_id": a.job, "run_id": a.run_id, "seq": 98,
                              "time": int(time.time() * 1000), "first_line": 0, "skipped": 0,
                              "lines": [{"level": "output", "text": CONTROL_TEXT}]},
                             a.node, a.run_id, node_cert, node_key)),
    ]
    params = pika.ConnectionParameters(
        host=a.host, port=int(a.port), virtual_host=a.vhost,
        credentials=pika.PlainCredentials(a.user, os.environ["FORGE_PASSWORD"]))
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.confirm_delivery()
    for key, body in messages:
        ch.basic_publish(exchange=a.collective + "_events", routing_key=key, body=body,
                         mandatory=True)
    conn.close()
    print("published %d forged events and the control" % (len(messages) - 1))


if __name__ == "__main__":
    main()
