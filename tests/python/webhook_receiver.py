"""A webhook receiver that verifies every delivery with the `standardwebhooks` library and
refuses each event's first FAIL_FIRST attempts with a 500 before accepting it.

Prints one JSON line per request on standard output: first {"listening": port}; then
{"accepted": id, ...} for a delivery it accepted, {"refused": id, ...} for one it failed on
purpose, {"invalid": reason} for one whose signature did not verify (answered 400)."""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["WEBHOOK_SECRET"])
fail_first = int(os.environ.get("FAIL_FIRST", "2"))
attempts = {}


def say(line):
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            payload = webhook.verify(body, dict(self.headers.items()))
        except WebhookVerificationError as e:
            say({"invalid": str(e)})
            self.send_response(400)
            self.end_headers()
            return
        message_id = self.headers["webhook-id"]
        attempts[message_id] = attempts.get(message_id, 0) + 1
        line = {
            "id": message_id,
            "attempt": attempts[message_id],
            "type": payload["type"],
            "eventId": payload["data"]["id"],
            "cursor": payload["data"]["cursor"],
        }
        if attempts[message_id] <= fail_first:
            say({"refused": message_id, **line})
            self.send_response(500)
            self.end_headers()
            return
        say({"accepted": message_id, **line})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "0"))), Receiver)
say({"listening": server.server_address[1]})
server.serve_forever()
