// Follows a Server-Sent Events stream with the eventsource package (the
// WHATWG EventSource for Node.js, pinned by package-lock.json), for
// test/t/055_sse_interop.pl.
//
//   JAM_TOKEN=... NODE_PATH=.../node_modules node follow.js URL COUNT SECONDS [TYPE...]
//
// Listens for the events named TYPE (default: submitted, applied, failed,
// and message, the unnamed ones) and prints one JSON line to stdout for
// each as it arrives, {"id", "type", "data"}: the event's lastEventId,
// type and data as EventSource hands them over.  Between them, lines with
// a "status" say what the connection does:
//
//   {"status": "connect", "n": 1, "last_event_id": null}   EventSource asks (the
//        Last-Event-ID header it sends, null without one)
//   {"status": "open"}                                       a stream was opened
//   {"status": "error", "ready_state": 0, "code", "message"} it was lost (0: EventSource
//        reconnects by itself; 2: it gave up)
//   {"status": "done", "events": COUNT}                      COUNT events came: exit 0
//   {"status": "timeout", "events": n}                       SECONDS passed first: exit 2
//   {"status": "failed", "events": n}                        EventSource gave up: exit 3
//
// EventSource does everything else itself: the bearer token is the only
// thing added to its requests (through its fetch option, as its README
// shows), and reconnecting, the retry delay and Last-Event-ID are its own.
'use strict';

const {EventSource} = require('eventsource');

const [url, countArg, secondsArg, ...typeArgs] = process.argv.slice(2);
const count = Number(countArg);
const seconds = Number(secondsArg);
const token = process.env.JAM_TOKEN;
if (!url || !Number.isInteger(count) || count < 1 || !(seconds > 0) || !token) {
  process.stderr.write('usage: JAM_TOKEN=... node follow.js URL COUNT SECONDS [TYPE...]\n');
  process.exit(64);
}
const types = typeArgs.length ? typeArgs : ['submitted', 'applied', 'failed', 'message'];

function print(doc) {
  process.stdout.write(JSON.stringify(doc) + '\n');
}

// Ends once stdout has been written out.
function finish(doc, code) {
  clearTimeout(timer);
  es.close();
  process.stdout.write(JSON.stringify(doc) + '\n', () => process.exit(code));
}

let connects = 0;
let received = 0;

const es = new EventSource(url, {
  fetch: (input, init) => {
    const headers = {...(init.headers || {})};
    connects++;
    print({status: 'connect', n: connects, last_event_id: headers['Last-Event-ID'] ?? null});
    return fetch(input, {...init, headers: {...headers, Authorization: `Bearer ${token}`}});
  },
});

es.addEventListener('open', () => print({status: 'open'}));

es.addEventListener('error', (err) => {
  print({
    status: 'error',
    ready_state: es.readyState,
    code: err.code ?? null,
    message: err.message ?? null,
  });
  if (es.readyState === EventSource.CLOSED) finish({status: 'failed', events: received}, 3);
});

for (const type of types) {
  es.addEventListener(type, (event) => {
    if (received >= count) return;
    received++;
    print({id: event.lastEventId, type: event.type, data: event.data});
    if (received === count) finish({status: 'done', events: received}, 0);
  });
}

const timer = setTimeout(() => finish({status: 'timeout', events: received}, 2), seconds * 1000);
