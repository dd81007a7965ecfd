// verify-proxy.js: an HTTP proxy in front of an S3-compatible server that
// checks every request's AWS Signature Version 4 with AWS's own signer
// (@smithy/signature-v4, what the AWS SDK for JavaScript signs with), as
// S3 would, before passing it on.  s3rver does not check V4 signatures, so
// without this a wrong signature from jam would go unnoticed.
//
//   node verify-proxy.js --listen PORT --upstream PORT --access-key-id K
//        --secret-access-key S --region R --log FILE
//
// A request is passed on only if its Authorization header is a SigV4
// signature by that key for that region and service s3, whose SignedHeaders
// include host, x-amz-date and x-amz-content-sha256, whose
// x-amz-content-sha256 is the SHA-256 of the body received, whose date is
// within 15 minutes of now, and whose signature is the one the signer
// computes for the same request; otherwise the answer is S3's 403
// SignatureDoesNotMatch (or AccessDenied).  The Authorization header is
// then dropped (s3rver knows no keys but its own), and a virtual-host-style
// request (<bucket>.localhost) is passed on in path style, which s3rver
// serves.  Every request is logged as a JSON line: method, host, path,
// verified, why not, and the status answered.
//
// Test controls, never signed nor passed on:
//   POST /__jam_test/delay?ms=N      delays each PUT by N ms before passing it on
//   POST /__jam_test/fail?status=S&n=N  answers the next N requests with status S
//   GET  /__jam_test/stats           {"verified": n, "refused": n}
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const { SignatureV4 } = require('@smithy/signature-v4');

function option(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  if (i < 0 || i + 1 >= process.argv.length) {
    if (fallback === undefined) {
      console.error(`verify-proxy: --${name} is required`);
      process.exit(2);
    }
    return fallback;
  }
  return process.argv[i + 1];
}

const listenPort = Number(option('listen'));
const upstreamPort = Number(option('upstream'));
const accessKeyId = option('access-key-id');
const secretAccessKey = option('secret-access-key');
const region = option('region', 'us-east-1');
const logFile = option('log');

// The signer's hash: SHA-256, and HMAC-SHA-256 when given a key.
class Sha256 {
  constructor(secret) {
    this.h = secret ? crypto.createHmac('sha256', Buffer.from(secret)) : crypto.createHash('sha256');
  }
  update(data) {
    this.h.update(typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data));
  }
  async digest() {
    return new Uint8Array(this.h.digest());
  }
}

const signer = new SignatureV4({
  credentials: { accessKeyId, secretAccessKey },
  region,
  service: 's3',
  sha256: Sha256,
  // S3 signs the path as sent, without encoding it a second time.
  uriEscapePath: false,
  applyChecksum: false,
});

let delayPutMs = 0;
let failStatus = 0;
let failLeft = 0;
const stats = { verified: 0, refused: 0 };

function log(entry) {
  fs.appendFileSync(logFile, JSON.stringify(entry) + '\n');
}

function s3Error(res, status, code, message) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

// Why the request's signature does not hold, or null when it does.
async function verify(req, body) {
  const auth = req.headers.authorization || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return ['AccessDenied', `no SigV4 Authorization header: ${JSON.stringify(auth)}`];
  const [, keyId, day, credRegion, service, signedList, signature] = m;
  if (keyId !== accessKeyId) return ['InvalidAccessKeyId', `unknown access key ${keyId}`];
  if (credRegion !== region || service !== 's3') return ['SignatureDoesNotMatch', `scope ${credRegion}/${service}`];
  const signed = signedList.split(';');
  for (const h of ['host', 'x-amz-date', 'x-amz-content-sha256'])
    if (!signed.includes(h)) return ['SignatureDoesNotMatch', `${h} is not signed`];
  const amzDate = req.headers['x-amz-date'] || '';
  const dm = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!dm || amzDate.slice(0, 8) !== day) return ['SignatureDoesNotMatch', `bad x-amz-date ${amzDate}`];
  const date = new Date(Date.UTC(+dm[1], dm[2] - 1, +dm[3], +dm[4], +dm[5], +dm[6]));
  if (Math.abs(Date.now() - date.getTime()) > 15 * 60 * 1000) return ['RequestTimeTooSkewed', amzDate];
  const bodyHash = crypto.createHash('sha256').update(body).digest('hex');
  if (req.headers['x-amz-content-sha256'] !== bodyHash)
    return ['XAmzContentSHA256Mismatch', `x-amz-content-sha256 ${req.headers['x-amz-content-sha256']} is not ${bodyHash}`];

  const url = requestUrl(req);
  const query = {};
  for (const [k, v] of url.searchParams) {
    if (k in query) query[k] = [].concat(query[k], v);
    else query[k] = v;
  }
  const headers = {};
  for (const h of signed) {
    if (req.headers[h] === undefined) return ['SignatureDoesNotMatch', `signed header ${h} is missing`];
    headers[h] = req.headers[h];
  }
  const [hostname, port] = req.headers.host.split(':');
  const computed = await signer.sign(
    { method: req.method, protocol: 'http:', hostname, port: port ? Number(port) : undefined,
      path: url.pathname, query, headers, body },
    { signingDate: date, unsignableHeaders: new Set(), signableHeaders: new Set(signed) });
  const expected = computed.headers.authorization || computed.headers.Authorization;
  const em = /SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(expected || '');
  if (!em) return ['SignatureDoesNotMatch', `the signer produced ${expected}`];
  if (em[1] !== signedList) return ['SignatureDoesNotMatch', `SignedHeaders ${signedList}, the signer signs ${em[1]}`];
  if (em[2] !== signature) return ['SignatureDoesNotMatch', `signature ${signature}, the signer computes ${em[2]}`];
  return null;
}

function control(req, res, url) {
  if (url.pathname === '/__jam_test/delay') delayPutMs = Number(url.searchParams.get('ms') || 0);
  else if (url.pathname === '/__jam_test/fail') {
    failStatus = Number(url.searchParams.get('status') || 503);
    failLeft = Number(url.searchParams.get('n') || 1);
  }
  const body = JSON.stringify(stats);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function forward(req, res, body, entry) {
  const host = (req.headers.host || '').split(':')[0];
  let path = req.url;
  // <bucket>.localhost: virtual-host style, which s3rver takes in path style.
  if (host.endsWith('.localhost')) path = '/' + host.slice(0, -'.localhost'.length) + path;
  const headers = Object.assign({}, req.headers);
  delete headers.authorization;
  delete headers.expect;
  headers.host = `127.0.0.1:${upstreamPort}`;
  headers['content-length'] = String(body.length);
  delete headers['transfer-encoding'];
  const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path, headers }, (ures) => {
    entry.status = ures.statusCode;
    log(entry);
    res.writeHead(ures.statusCode, ures.headers);
    ures.pipe(res);
  });
  up.on('error', (e) => {
    entry.status = 502;
    entry.why = `upstream: ${e.message}`;
    log(entry);
    s3Error(res, 502, 'BadGateway', 'the S3 server behind the proxy did not answer');
  });
  up.end(body);
}

// A request's path and query, parsed: req.url is origin-form, and URL
// wants an absolute base, of which only the path and query are read (the
// Host header is not trusted to form one).
function requestUrl(req) {
  return new URL(req.url, 'http://127.0.0.1');
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = Buffer.concat(chunks);
    const url = requestUrl(req);
    if (url.pathname.startsWith('/__jam_test/')) return control(req, res, url);
    const entry = { method: req.method, host: req.headers.host, path: req.url, bytes: body.length };
    if (failLeft > 0) {
      failLeft--;
      entry.verified = null;
      entry.status = failStatus;
      entry.why = 'told to fail';
      log(entry);
      return s3Error(res, failStatus, failStatus === 503 ? 'SlowDown' : 'InternalError', 'told to fail');
    }
    let why;
    try {
      why = await verify(req, body);
    } catch (e) {
      why = ['SignatureDoesNotMatch', `the signer failed: ${e.message}`];
    }
    entry.verified = why === null;
    if (why !== null) {
      stats.refused++;
      entry.why = why[1];
      entry.status = 403;
      log(entry);
      return s3Error(res, 403, why[0], why[1]);
    }
    stats.verified++;
    if (req.method === 'PUT' && delayPutMs > 0)
      return setTimeout(() => forward(req, res, body, entry), delayPutMs);
    forward(req, res, body, entry);
  });
});
server.keepAliveTimeout = 30000;
server.listen(listenPort, '127.0.0.1', () => {
  console.log(`verify-proxy: listening on 127.0.0.1:${listenPort}, passing on to 127.0.0.1:${upstreamPort}`);
});
