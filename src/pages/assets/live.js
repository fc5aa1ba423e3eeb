// Keeps a page current: subscribes to `ratingChanged` (graphql-transport-ws, on this server)
// and, on each new verdict, fetches the page again and swaps its content in, so what the
// server renders stays the only rendering. A page of the past (asOf, validOn) never changes
// and does not subscribe. Without JavaScript the page is complete as served.
(() => {
  'use strict';
  const main = document.querySelector('main');
  if (!main || main.dataset.live !== 'true' || !('WebSocket' in window)) return;
  const commitmentId = main.dataset.commitmentId || null;
  const status = () => document.getElementById('live-status');
  let delay = 500;
  let refreshing = null;
  let again = false;

  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = (async () => {
      do {
        again = false;
        const response = await fetch(location.href, { headers: { accept: 'text/html' }, cache: 'no-store' });
        if (!response.ok) return;
        const fresh = new DOMParser().parseFromString(await response.text(), 'text/html').querySelector('main');
        if (!fresh) return;
        const focused = document.activeElement && document.activeElement.id;
        main.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
        if (focused) document.getElementById(focused)?.focus();
        const s = status();
        if (s) s.textContent = `Updated with a new verdict at ${new Date().toLocaleTimeString('en-GB')}.`;
        main.dataset.updated = String(Number(main.dataset.updated || 0) + 1);
      } while (again);
    })();
    try { await refreshing; } finally { refreshing = null; }
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/graphql/ws`, 'graphql-transport-ws');
    ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    ws.onmessage = (message) => {
      const m = JSON.parse(message.data);
      if (m.type === 'connection_ack') {
        delay = 500;
        ws.send(JSON.stringify({
          id: 'verdicts', type: 'subscribe',
          payload: {
            query: 'subscription Verdicts($c: ID) { ratingChanged(commitmentId: $c) { id } }',
            variables: { c: commitmentId },
          },
        }));
        main.dataset.subscribed = 'true';
      } else if (m.type === 'next') {
        refresh();
      } else if (m.type === 'ping') {
        ws.send(JSON.stringify({ type: 'pong' }));
      }
    };
    ws.onclose = () => {
      main.dataset.subscribed = 'false';
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
