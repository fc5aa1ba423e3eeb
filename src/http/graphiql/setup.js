// Starts GraphiQL on this server's own endpoints; every file it needs comes from this server.
(function () {
  'use strict';
  var page = document.getElementById('graphiql');
  var config = JSON.parse(page.getAttribute('data-config'));
  var ws = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + config.subscriptions;
  var fetcher = GraphiQL.createFetcher({ url: location.origin + config.endpoint, subscriptionUrl: ws });
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
