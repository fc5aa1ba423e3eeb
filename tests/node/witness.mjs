// A transparency-log witness (C2SP tlog-witness, tlog-cosignature) written from the
// specifications alone, with nothing but Node's own modules: the tests run it as the log's
// witness, independent of the server's code.
//
// Environment: WITNESS_NAME (its key name), LOG_VKEY (the vkey of the one log it witnesses).
// It listens on a free port of 127.0.0.1 and prints one JSON line on stdout:
// {"vkey": "<its cosignature/v1 verifier key>", "url": "http://127.0.0.1:<port>"}.
//
// POST /add-checkpoint follows tlog-witness: 404 unknown origin, 403 no valid signature by the
// log, 400 malformed or old size above the checkpoint's, 409 (text/x.tlog.size) when the old
// size is not the one it holds or the same size has another root, 422 when the consistency
// proof fails, else 200 with its cosignature line. For the tests it also has
// POST /control {"down": bool} (while down, add-checkpoint answers 503 except to requests with
// the header x-witness-bypass) and GET /stats (its size, root and how many 409s it sent).
import { createServer } from 'node:http';
import crypto from 'node:crypto';

const NAME = process.env.WITNESS_NAME;
const LOG_VKEY = process.env.LOG_VKEY;
if (!NAME || !LOG_VKEY) {
  console.error('WITNESS_NAME and LOG_VKEY are required');
  process.exit(2);
}

const sha256 = (...parts) => {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const keyId = (name, keyBytes) => sha256(Buffer.from(name + '\n'), keyBytes).subarray(0, 4);
const publicKeyFromRaw = (raw) =>
  crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });

// The log's verifier key: <name>+<hex id>+<base64 of 0x01 ‖ key>.
// The base64 key may itself hold '+': split at the first two only.
const vkeyText = LOG_VKEY.trim();
const firstPlus = vkeyText.indexOf('+');
const secondPlus = vkeyText.indexOf('+', firstPlus + 1);
const logName = vkeyText.slice(0, firstPlus);
const logIdHex = vkeyText.slice(firstPlus + 1, secondPlus);
const logKeyB64 = vkeyText.slice(secondPlus + 1);
const logKeyBytes = Buffer.from(logKeyB64, 'base64');
if (logKeyBytes[0] !== 0x01 || logKeyBytes.length !== 33) throw new Error('not an Ed25519 vkey');
if (keyId(logName, logKeyBytes).toString('hex') !== logIdHex) throw new Error('vkey id mismatch');
const logKey = publicKeyFromRaw(logKeyBytes.subarray(1));

// Its own key: cosignature/v1 (algorithm 0x04).
const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
const ownRaw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
const ownKey = Buffer.concat([Buffer.from([0x04]), ownRaw]);
const ownId = keyId(NAME, ownKey);
const vkey = `${NAME}+${ownId.toString('hex')}+${ownKey.toString('base64')}`;

// RFC 6962 interior node.
const node = (l, r) => sha256(Buffer.from([1]), l, r);

// RFC 9162 §2.1.4.2: verify a consistency proof from (first, firstHash) to (second, secondHash).
function verifyConsistency(first, second, firstHash, secondHash, proof) {
  if (first === second) return proof.length === 0 && firstHash.equals(secondHash);
  if (first === 0 || first > second || proof.length === 0) return false;
  let path = proof;
  if ((first & (first - 1)) === 0) path = [firstHash, ...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (fn & 1) { fn >>= 1; sn >>= 1; }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if ((fn & 1) || fn === sn) {
      fr = node(c, fr);
      sr = node(c, sr);
      if (!(fn & 1)) { while (!(fn & 1) && fn !== 0) { fn >>= 1; sn >>= 1; } }
    } else {
      sr = node(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return fr.equals(firstHash) && sr.equals(secondHash) && sn === 0;
}

let latest = { size: 0, root: null };
let down = false;
let conflicts = 0;

function answer(res, status, body, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { 'content-type': type });
  res.end(body);
}

function addCheckpoint(body) {
  const split = body.indexOf('\n\n');
  if (split < 0) return [400, 'no empty line after the proof'];
  const head = body.slice(0, split).split('\n');
  const note = body.slice(split + 2);
  const old = /^old (0|[1-9][0-9]*)$/.exec(head[0]);
  if (!old) return [400, 'no old size line'];
  const oldSize = Number(old[1]);
  const proof = head.slice(1).map((l) => Buffer.from(l, 'base64'));
  if (proof.length > 63 || proof.some((h) => h.length !== 32)) return [400, 'bad proof lines'];
  // The note: text, an empty line, signature lines.
  const sep = note.indexOf('\n\n');
  if (sep < 0) return [400, 'not a signed note'];
  const text = note.slice(0, sep + 1);
  const lines = text.split('\n');
  const [origin, sizeLine, rootLine] = lines;
  if (origin !== logName) return [404, `unknown log ${origin}`];
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine ?? '')) return [400, 'bad size line'];
  const size = Number(sizeLine);
  const root = Buffer.from(rootLine ?? '', 'base64');
  if (root.length !== 32) return [400, 'bad root line'];
  const signed = note.slice(sep + 2).split('\n').filter((l) => l.length > 0).some((line) => {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m || m[1] !== logName) return false;
    const sig = Buffer.from(m[2], 'base64');
    if (sig.length !== 68 || sig.subarray(0, 4).toString('hex') !== logIdHex) return false;
    return crypto.verify(null, Buffer.from(text), logKey, sig.subarray(4));
  });
  if (!signed) return [403, 'no valid signature by the log'];
  if (oldSize > size) return [400, 'old size above the checkpoint size'];
  if (oldSize !== latest.size) {
    conflicts += 1;
    return [409, `${latest.size}\n`, 'text/x.tlog.size'];
  }
  if (oldSize === 0) {
    if (proof.length !== 0) return [400, 'a proof from size 0'];
  } else if (oldSize === size) {
    if (!root.equals(latest.root)) {
      conflicts += 1;
      return [409, `${latest.size}\n`, 'text/x.tlog.size'];
    }
  } else if (!verifyConsistency(oldSize, size, latest.root, root, proof)) {
    return [422, 'the consistency proof does not verify'];
  }
  latest = { size, root };
  const time = BigInt(Math.floor(Date.now() / 1000));
  const timeBytes = Buffer.alloc(8);
  timeBytes.writeBigUInt64BE(time);
  const message = Buffer.from(`cosignature/v1\ntime ${time}\n${text}`);
  const signature = crypto.sign(null, message, privateKey);
  const blob = Buffer.concat([ownId, timeBytes, signature]);
  return [200, `\u2014 ${NAME} ${blob.toString('base64')}\n`];
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    if (req.method === 'POST' && req.url === '/add-checkpoint') {
      if (down && !req.headers['x-witness-bypass']) return answer(res, 503, 'down for the test\n');
      const [status, text, type] = addCheckpoint(body);
      return answer(res, status, text, type);
    }
    if (req.method === 'POST' && req.url === '/control') {
      down = Boolean(JSON.parse(body).down);
      return answer(res, 200, 'ok\n');
    }
    if (req.method === 'GET' && req.url === '/stats') {
      return answer(res, 200, JSON.stringify({
        size: latest.size,
        root: latest.root ? latest.root.toString('base64') : null,
        conflicts,
      }), 'application/json');
    }
    answer(res, 404, 'not found\n');
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  console.log(JSON.stringify({ vkey, url: `http://127.0.0.1:${port}` }));
});
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
