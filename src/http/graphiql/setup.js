// Starts GraphiQL on this server's own endpoints; every file it needs comes from this server.
//
// Queries and mutations go over HTTP with GraphiQL's own fetcher. Subscriptions go over
// WebSocket (graphql-transport-ws), with a small client of ours: GraphiQL's fetcher decides
// whether an operation is a subscription from the editor's parsed document, which lags
// behind the text for a moment after an edit, so an operation run at once went over HTTP.
// Here the decision is taken from the text that is sent.
(function () {
  'use strict';
  var page = document.getElementById('graphiql');
  var config = JSON.parse(page.getAttribute('data-config'));
  var wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + config.subscriptions;
  var http = GraphiQL.createFetcher({ url: location.origin + config.endpoint });

  // The operations of a document, in order: [{ type, name }]. Comments, strings and
  // everything inside braces are skipped; only top-level definitions count.
  function operations(text) {
    var ops = [];
    var depth = 0;
    var pending = null;
    var token = /#[^\n\r]*|"""[\s\S]*?"""|"(?:\\.|[^"\\\n])*"|[{}]|[_A-Za-z][_0-9A-Za-z]*/g;
    var m;
    while ((m = token.exec(text))) {
      var t = m[0];
      if (t[0] === '#' || t[0] === '"') continue;
      if (t === '{') {
        if (depth === 0) {
          ops.push(pending || { type: 'query', name: null });
          pending = null;
        }
        depth++;
      } else if (t === '}') {
        depth = Math.max(0, depth - 1);
      } else if (depth === 0) {
        if (t === 'query' || t === 'mutation' || t === 'subscription') pending = { type: t, name: null };
        else if (t === 'fragment') pending = { type: 'fragment', name: null };
        else if (pending && pending.name === null && pending.type !== 'fragment') pending.name = t;
      }
    }
    return ops.filter(function (op) { return op.type !== 'fragment'; });
  }

  function isSubscription(params) {
    var ops = operations(params.query || '');
    var op = params.operationName
      ? ops.filter(function (o) { return o.name === params.operationName; })[0]
      : ops[0];
    return !!op && op.type === 'subscription';
  }

  // One graphql-transport-ws connection per subscription, authenticated with the Headers
  // tab's contents as the connection_init payload.
  function subscribe(params, headers) {
    return {
      subscribe: function (sink) {
        var socket = new WebSocket(wsUrl, 'graphql-transport-ws');
        var done = false;
        function finish() {
          if (done) return;
          done = true;
          if (socket.readyState === WebSocket.OPEN) {
            socket.send(JSON.stringify({ id: '1', type: 'complete' }));
            socket.close(1000);
          }
        }
        socket.onopen = function () {
          socket.send(JSON.stringify({ type: 'connection_init', payload: headers || {} }));
        };
        socket.onmessage = function (event) {
          var message = JSON.parse(event.data);
          switch (message.type) {
            case 'connection_ack':
              socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: params }));
              break;
            case 'ping':
              socket.send(JSON.stringify({ type: 'pong' }));
              break;
            case 'next':
              sink.next(message.payload);
              break;
            case 'error':
              sink.next({ errors: message.payload });
              done = true;
              socket.close(1000);
              sink.complete();
              break;
            case 'complete':
              done = true;
              socket.close(1000);
              sink.complete();
              break;
          }
        };
        socket.onclose = function (event) {
          if (done) return;
          done = true;
          sink.next({ errors: [{ message: 'the connection closed (' + event.code + ' ' + event.reason + ')' }] });
          sink.complete();
        };
        return { unsubscribe: finish };
      },
    };
  }

  function fetcher(params, options) {
    if (isSubscription(params)) return subscribe(params, options && options.headers);
    return http(params, options);
  }

  var footer = React.createElement(
    GraphiQL.Footer,
    null,
    React.createElement(
      'p',
      { className: 'ct-hint' },
      'Reads need no token. To write, add ',
      React.createElement('code', null, '{"Authorization": "Bearer <token>"}'),
      ' under Headers (create a token with ',
      React.createElement('code', null, 'commitment-tracker token create'),
      '); subscriptions send it in connection_init.'
    )
  );
  ReactDOM.createRoot(page).render(
    React.createElement(
      GraphiQL,
      {
        fetcher: fetcher,
        defaultQuery: config.defaultQuery,
        defaultEditorToolsVisibility: 'headers',
        isHeadersEditorEnabled: true,
      },
      footer
    )
  );
})();
