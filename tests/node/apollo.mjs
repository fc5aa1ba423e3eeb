// Apollo Client 4 against a running server: a query, a mutation with a token, a subscription
// through GraphQLWsLink that receives it, and automatic persisted queries (a miss, then a
// hit, over POST and GET).
//
// Environment: SERVER_URL (http://host:port), TOKEN (an admin token). Prints one JSON line per
// check; exits non-zero on the first failed one.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { createHash } from 'node:crypto';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const { SERVER_URL, TOKEN } = process.env;
if (!SERVER_URL || !TOKEN) {
  console.error('SERVER_URL and TOKEN are required');
  process.exit(2);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function report(check, details = {}) {
  console.log(JSON.stringify({ check, ok: true, ...details }));
}

// Every request the HTTP link sends, to see what went over the wire.
const sent = [];
const recordingFetch = async (url, options) => {
  const response = await fetch(url, options);
  const copy = response.clone();
  sent.push({ url: String(url), method: options.method ?? 'GET', status: response.status, body: await copy.text() });
  return response;
};

const httpLink = new HttpLink({
  uri: `${SERVER_URL}/graphql`,
  fetch: recordingFetch,
  headers: { authorization: `Bearer ${TOKEN}` },
});
const wsClient = createClient({
  url: `${SERVER_URL.replace(/^http/, 'ws')}/graphql/ws`,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${TOKEN}` },
});
const wsLink = new GraphQLWsLink(wsClient);
const isSubscription = ({ query }) => {
  const d = getMainDefinition(query);
  return d.kind === 'OperationDefinition' && d.operation === 'subscription';
};
const client = new ApolloClient({
  link: ApolloLink.split(isSubscription, wsLink, httpLink),
  cache: new InMemoryCache(),
});

// A query.
const COMMITMENT = gql`
  query Commitment($slug: String!) {
    commitment(slug: $slug) { id slug title version cursor currentAssessment { id overall } }
  }
`;
const { data } = await client.query({ query: COMMITMENT, variables: { slug: 'epr-all-trusts' } });
check(data.commitment?.slug === 'epr-all-trusts', `query: ${JSON.stringify(data)}`);
const commitmentId = data.commitment.id;
report('query', { version: data.commitment.version });

// A subscription from what was just read (its cursor: nothing after it is missed, so the
// mutation needs no wait for the subscription to start), then a mutation with the token.
const received = new Promise((resolve, reject) => {
  const subscription = client
    .subscribe({
      query: gql`
        subscription Rated($id: ID, $after: String) {
          ratingChanged(commitmentId: $id, after: $after) { id overall commitment { slug } }
        }
      `,
      variables: { id: commitmentId, after: data.commitment.cursor },
    })
    .subscribe({
      next: (result) => {
        if (result.error) return reject(result.error);
        subscription.unsubscribe();
        resolve(result.data.ratingChanged);
      },
      error: reject,
    });
});
const result = await client.mutate({
  mutation: gql`
    mutation Assess($input: AssessCommitmentInput!) {
      assessCommitment(input: $input) { id overall direction }
    }
  `,
  variables: {
    input: {
      commitmentId, assessor: 'Apollo test panel', assessorKind: 'INDEPENDENT',
      assessedOn: '2025-06-30', overall: 'REQUIRES_IMPROVEMENT', deliveryStatus: 'NOT_ON_TRACK',
      rationale: 'Apollo Client check',
    },
  },
});
const assessed = result.data.assessCommitment;
const heard = await received;
check(heard.id === assessed.id, `received ${JSON.stringify(heard)}, made ${JSON.stringify(assessed)}`);
check(heard.overall === 'REQUIRES_IMPROVEMENT' && heard.commitment.slug === 'epr-all-trusts', `received ${JSON.stringify(heard)}`);
report('mutation with a token', { id: assessed.id });
report('subscription receives it', { id: heard.id });

// Automatic persisted queries: a miss, then the document with its hash, then hits.
const sha256 = (text) => createHash('sha256').update(text).digest('hex');
for (const useGET of [false, true]) {
  sent.length = 0;
  const persistedClient = new ApolloClient({
    link: new PersistedQueryLink({ sha256, useGETForHashedQueries: useGET }).concat(
      new HttpLink({ uri: `${SERVER_URL}/graphql`, fetch: recordingFetch }),
    ),
    cache: new InMemoryCache(),
  });
  const SCORES = gql`
    query Scores${useGET ? 'ByGet' : 'ByPost'} { scorecard { total byRating { rating count } } }
  `;
  const first = await persistedClient.query({ query: SCORES, fetchPolicy: 'network-only' });
  check(typeof first.data.scorecard.total === 'number', `persisted first: ${JSON.stringify(first)}`);
  // First the hash alone (a miss), then the document with its hash.
  check(sent.length === 2, `expected a miss and a retry, sent ${JSON.stringify(sent)}`);
  check(sent[0].body.includes('PERSISTED_QUERY_NOT_FOUND'), `first answer: ${sent[0].body}`);
  check(!sent[0].url.includes('query=') && (useGET ? sent[0].method === 'GET' : true), `first request: ${JSON.stringify(sent[0])}`);
  const second = await persistedClient.query({ query: SCORES, fetchPolicy: 'network-only' });
  check(second.data.scorecard.total === first.data.scorecard.total, 'persisted hit answers the same');
  check(sent.length === 3 && sent[2].status === 200 && !sent[2].body.includes('errors'), `hit: ${JSON.stringify(sent[2])}`);
  if (useGET) check(sent[2].method === 'GET' && sent[2].url.includes('extensions='), `hit over GET: ${sent[2].url}`);
  report(`persisted query miss then hit over ${useGET ? 'GET' : 'POST'}`, { requests: sent.map((s) => `${s.method} ${s.status}`) });
}

await wsClient.dispose();
process.exit(0);
