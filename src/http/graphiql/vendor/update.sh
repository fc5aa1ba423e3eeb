#!/usr/bin/env bash
# Rebuilds the files in this folder from pinned npm releases (npm checks each tarball's
# integrity against the registry). The only change made to them: the sourceMappingURL
# comment is dropped, so that a browser's developer tools ask for no file the server lacks.
# The server builds them into its binary (src/http/graphiql/mod.rs); update the versions
# there and in SHA256SUMS together.
set -euo pipefail
cd "$(dirname "$0")"
GRAPHIQL=4.1.2
REACT=18.3.1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null)
for p in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
  mkdir -p "$work/$p" && tar xzf "$work/$p.tgz" -C "$work/$p"
done
strip_map() { sed '/^\/\/# sourceMappingURL=/d; s#/\*\# sourceMappingURL=[^*]*\*/##'; }
strip_map < "$work/graphiql-$GRAPHIQL/package/dist/index.umd.js" > "graphiql-$GRAPHIQL.min.js"
strip_map < "$work/graphiql-$GRAPHIQL/package/dist/style.css" > "graphiql-$GRAPHIQL.css"
cp "$work/graphiql-$GRAPHIQL/package/LICENSE" LICENSE-graphiql
cp "$work/react-$REACT/package/umd/react.production.min.js" "react-$REACT.production.min.js"
cp "$work/react-dom-$REACT/package/umd/react-dom.production.min.js" "react-dom-$REACT.production.min.js"
cp "$work/react-$REACT/package/LICENSE" LICENSE-react
sha256sum ./*.js ./*.css > SHA256SUMS
