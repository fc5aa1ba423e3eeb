"""Python gql against a running server: the schema fetched by introspection
(fetch_schema_from_transport=True) over HTTP and over WebSocket, a query and a mutation over
HTTP, and a subscription over WebsocketsTransport in both WebSocket protocols.

Environment: SERVER_URL (http://host:port), TOKEN (an admin token). Prints one JSON line per
check; exits non-zero on the first failed one.
"""

import asyncio
import json
import os
import sys

from gql import Client, gql
from gql.transport.requests import RequestsHTTPTransport
from gql.transport.websockets import WebsocketsTransport

URL = os.environ["SERVER_URL"]
TOKEN = os.environ["TOKEN"]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def report(check, **details):
    print(json.dumps({"check": check, "ok": True, **details}), flush=True)


def check(condition, message):
    if not condition:
        print(message, file=sys.stderr)
        sys.exit(1)


def over_http():
    transport = RequestsHTTPTransport(url=f"{URL}/graphql", headers=AUTH, retries=0)
    client = Client(transport=transport, fetch_schema_from_transport=True)
    with client as session:
        schema = client.schema
        check(schema is not None, "no schema fetched")
        for name in ("Query", "Mutation", "Subscription", "Commitment", "Assessment"):
            check(schema.get_type(name) is not None, f"{name} missing from the schema")
        report("schema fetched over HTTP", types=len(schema.type_map))

        # gql validates every document against the fetched schema before sending it.
        result = session.execute(
            gql('query { commitment(slug: "epr-all-trusts") { id slug version cursor } }')
        )
        commitment = result["commitment"]
        check(commitment["slug"] == "epr-all-trusts", f"query: {result}")
        report("query over HTTP", version=commitment["version"])


def assess(session, commitment_id, protocol):
    result = session.execute(
        gql(
            "mutation($input: AssessCommitmentInput!) {"
            " assessCommitment(input: $input) { id overall } }"
        ),
        variable_values={
            "input": {
                "commitmentId": commitment_id,
                "assessor": "gql test panel",
                "assessorKind": "INDEPENDENT",
                "assessedOn": "2025-07-01",
                "overall": "GOOD",
                "deliveryStatus": "ON_TRACK",
                "rationale": f"Python gql check over {protocol}",
            }
        },
    )
    return result["assessCommitment"]


async def subscribe(protocols, commitment):
    ws_url = URL.replace("http", "ws", 1) + "/graphql/ws"
    transport = WebsocketsTransport(url=ws_url, subprotocols=protocols, init_payload=AUTH)
    async with Client(transport=transport, fetch_schema_from_transport=True) as session:
        subscription = gql(
            "subscription($c: ID, $after: String) {"
            " ratingChanged(commitmentId: $c, after: $after) { id overall commitment { slug } } }"
        )
        variables = {"c": commitment["id"], "after": commitment["cursor"]}
        async for result in session.subscribe(subscription, variable_values=variables):
            return result["ratingChanged"]


def main():
    over_http()
    # Each protocol alone, and gql's default (both offered).
    for protocols in (
        [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        [WebsocketsTransport.APOLLO_SUBPROTOCOL],
        None,
    ):
        protocol = ", ".join(protocols) if protocols else "default"
        http = Client(
            transport=RequestsHTTPTransport(url=f"{URL}/graphql", headers=AUTH, retries=0),
            fetch_schema_from_transport=True,
        )
        with http as session:
            # Read the cursor first: the subscription starts after it, so the assessment made
            # now reaches it however long the subscription takes to start.
            fresh = session.execute(
                gql('query { commitment(slug: "epr-all-trusts") { id cursor } }')
            )["commitment"]
            made = assess(session, fresh["id"], protocol)
        heard = asyncio.run(asyncio.wait_for(subscribe(protocols, fresh), 30))
        check(heard["id"] == made["id"], f"{protocol}: heard {heard}, made {made}")
        check(heard["commitment"]["slug"] == "epr-all-trusts", f"{protocol}: {heard}")
        report(f"subscription over WebsocketsTransport ({protocol})", id=heard["id"])


if __name__ == "__main__":
    main()
