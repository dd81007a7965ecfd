#!/usr/bin/env node
// Checks docs/openapi.json, and answers of jam-shim against it, with tools
// nobody on the project wrote: @readme/openapi-parser (the OpenAPI 3.1
// document against the specification's schema, and the rules the schema
// cannot state) and Ajv (JSON Schema draft 2020-12, as OpenAPI 3.1 uses,
// with ajv-formats).  The modules come from NODE_PATH: scripts/test.sh
// installs them, pinned by test/openapi/package-lock.json, outside the
// project.
//
//   validate.js lint DOC
//       the document is valid OpenAPI 3.1, and every schema in it compiles
//       under Ajv's strict mode; prints "ok", or each problem
//   validate.js check DOC CASES
//       CASES: a JSON array of answers, each {template, path, method,
//       status, headers: {lowercase name: value}, body_base64}; template is
//       the route's path template, or null for a path no route has.  Prints
//       one line per answer: "ok N" or "not ok N: why"
//   validate.js response DOC TEMPLATE METHOD STATUS [CONTENT_TYPE [BODY_FILE]]
//       one answer; prints "ok" or why not, and exits 0 or 1
'use strict';

const fs = require('fs');

const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

const SCHEMA_BASE = 'https://jam.invalid/openapi.json';

function load(path) {
  return JSON.parse(fs.readFileSync(path, 'utf8'));
}

// The value a local JSON pointer ("#/a/b") names in the document.
function pointer(doc, ref) {
  if (!ref.startsWith('#/')) throw new Error(`not a local reference: ${ref}`);
  let v = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (v === null || typeof v !== 'object' || !(key in v)) throw new Error(`unresolved reference: ${ref}`);
    v = v[key];
  }
  return v;
}

// An OpenAPI object with its $ref (and the $refs it leads to) followed.
function deref(doc, obj) {
  let seen = 0;
  while (obj && typeof obj === 'object' && typeof obj.$ref === 'string') {
    if (++seen > 32) throw new Error(`reference loop at ${obj.$ref}`);
    obj = pointer(doc, obj.$ref);
  }
  return obj;
}

// A copy of a schema whose references into the document's component
// schemas point at their copies under $defs of the schema registered with
// Ajv as SCHEMA_BASE.
function rebase(schema) {
  if (Array.isArray(schema)) return schema.map(rebase);
  if (schema === null || typeof schema !== 'object') return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$ref' && typeof v === 'string') {
      const m = /^#\/components\/schemas\/([^/]+)$/.exec(v);
      if (!m) throw new Error(`a schema refers to ${v}, which is not a component schema`);
      out[k] = `${SCHEMA_BASE}#/$defs/${m[1]}`;
    } else out[k] = rebase(v);
  }
  return out;
}

// Ajv in strict mode, with the OpenAPI 3.1 vocabulary's keywords and the
// formats of the OpenAPI format registry, and the document's component
// schemas registered so that references to them resolve.
function makeAjv(doc) {
  const ajv = new Ajv2020({ strict: true, strictTypes: false, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  ajv.addVocabulary(['discriminator', 'xml', 'externalDocs', 'example']);
  ajv.addSchema({ $id: SCHEMA_BASE, $defs: rebase((doc.components || {}).schemas || {}) });
  return ajv;
}

const compiled = new Map();
function validator(ajv, schema, where) {
  if (!compiled.has(where)) compiled.set(where, ajv.compile(rebase(schema)));
  return compiled.get(where);
}

function ajvErrors(errors) {
  return (errors || []).slice(0, 6).map((e) => `${e.instancePath || '(root)'} ${e.message}` +
    (e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` :
      e.params && e.params.unevaluatedProperty ? ` (${e.params.unevaluatedProperty})` :
        e.params && e.params.allowedValues ? ` (${JSON.stringify(e.params.allowedValues)})` : '')).join('; ');
}

// Every schema object the document holds outside components/schemas, with where it is.
function* schemasOf(doc) {
  function* walk(obj, where) {
    if (obj === null || typeof obj !== 'object') return;
    for (const [k, v] of Object.entries(obj)) {
      if (k === 'schema' && v && typeof v === 'object') yield [v, `${where}/schema`];
      else if (k !== 'schemas') yield* walk(v, `${where}/${k}`);
    }
  }
  yield* walk(doc.paths, '#/paths');
  const c = doc.components || {};
  for (const kind of ['parameters', 'headers', 'responses', 'requestBodies']) yield* walk(c[kind], `#/components/${kind}`);
}

async function lint(docPath) {
  const problems = [];
  const doc = load(docPath);
  let OpenAPIParser;
  try {
    OpenAPIParser = require('@readme/openapi-parser');
  } catch (e) {
    console.log(`cannot load @readme/openapi-parser: ${e.message}`);
    return 1;
  }
  if (!/^3\.1\.\d+$/.test(doc.openapi || '')) problems.push(`openapi is ${doc.openapi}, not 3.1.x`);
  try {
    await OpenAPIParser.validate(JSON.parse(JSON.stringify(doc)));
  } catch (e) {
    problems.push(`@readme/openapi-parser: ${e.message}`);
  }
  let ajv;
  try {
    ajv = makeAjv(doc);
    for (const name of Object.keys((doc.components || {}).schemas || {})) {
      if (!ajv.getSchema(`${SCHEMA_BASE}#/$defs/${name}`)) problems.push(`components/schemas/${name} does not compile`);
    }
  } catch (e) {
    problems.push(`components/schemas: ${e.message}`);
    ajv = null;
  }
  if (ajv) {
    for (const [schema, where] of schemasOf(doc)) {
      try {
        validator(ajv, schema, where);
      } catch (e) {
        problems.push(`${where}: ${e.message}`);
      }
    }
  }
  if (problems.length === 0) {
    console.log('ok');
    return 0;
  }
  for (const p of problems) console.log(p);
  return 1;
}

// The path template a concrete path matches: a template without parameters
// first (as OpenAPI says), then the first with; null when none does.  A
// parameter matches one segment, but the one a path item names in
// x-jam-rest-parameter, which is the rest of the path, slashes and all (a
// tlog-tiles path), in non-empty segments.
function templateOf(doc, path) {
  const templates = Object.keys(doc.paths);
  const literal = templates.find((t) => !t.includes('{') && t === path);
  if (literal) return literal;
  const escape = (s) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
  for (const t of templates) {
    const rest = doc.paths[t]['x-jam-rest-parameter'];
    const re = new RegExp('^' + t.split(/(\{[^}]+\})/).map((s) => {
      if (!/^\{[^}]+\}$/.test(s)) return escape(s);
      return rest !== undefined && s === `{${rest}}` ? '[^/]+(?:/[^/]+)*' : '[^/]+';
    }).join('') + '$');
    if (re.test(path)) return t;
  }
  return null;
}

// "type/subtype; a=b" as lowercase type/subtype and its parameters, normalized.
function mediaType(value) {
  const parts = String(value).split(';').map((s) => s.trim()).filter((s) => s.length);
  const essence = (parts.shift() || '').toLowerCase();
  return { essence, full: [essence, ...parts.map((p) => p.replace(/\s*=\s*/, '=').toLowerCase())].join('; ') };
}

// The media type object of a response's content that an answer's Content-Type matches.
function contentFor(content, contentType) {
  const got = mediaType(contentType);
  const keys = Object.keys(content);
  let k = keys.find((key) => mediaType(key).full === got.full);
  if (!k) k = keys.find((key) => !key.includes(';') && mediaType(key).essence === got.essence);
  if (!k) k = keys.find((key) => key.endsWith('/*') && key !== '*/*' && got.essence.startsWith(key.slice(0, -1)));
  if (!k) k = keys.find((key) => key === '*/*');
  return k ? [k, content[k]] : [null, null];
}

function isJson(essence) {
  return essence === 'application/json' || essence.endsWith('+json');
}

// Whether one answer is what the document says; returns null, or why not.
function checkOne(doc, ajv, c) {
  const method = String(c.method).toLowerCase();
  const status = String(c.status);
  const headers = {};
  for (const [k, v] of Object.entries(c.headers || {})) headers[k.toLowerCase()] = v;
  const body = Buffer.from(c.body_base64 || '', 'base64');
  const anyRequest = (doc['x-jam-any-request'] || {}).responses || {};
  let sets;
  let what;

  if (c.template !== null && c.template !== undefined) {
    if (!doc.paths[c.template]) return `${c.template} is not a path of the document`;
    if (c.path !== undefined && c.path !== null) {
      const path = String(c.path).split('?')[0];
      const t = templateOf(doc, path);
      if (t !== c.template) return `${path} matches ${t === null ? 'no path' : t} in the document, not ${c.template}`;
    }
    const item = doc.paths[c.template];
    const op = item[method];
    if (op) {
      sets = [op.responses, anyRequest];
      what = `${method.toUpperCase()} ${c.template}`;
    } else {
      sets = [(doc['x-jam-method-not-allowed'] || {}).responses || {}, anyRequest];
      what = `${method.toUpperCase()} ${c.template} (a method the path does not take)`;
    }
  } else {
    if (c.path && templateOf(doc, String(c.path).split('?')[0]) !== null) return `${c.path} is a path of the document`;
    sets = [(doc['x-jam-no-route'] || {}).responses || {}, anyRequest];
    what = `${method.toUpperCase()} ${c.path} (no route)`;
  }

  let response;
  for (const set of sets) {
    response = set[status] || set[`${status[0]}XX`] || set.default;
    if (response) break;
  }
  if (!response) return `status ${status} is not documented for ${what}`;
  response = deref(doc, response);

  for (const [name, h0] of Object.entries(response.headers || {})) {
    if (name.toLowerCase() === 'content-type') continue;
    const h = deref(doc, h0);
    const value = headers[name.toLowerCase()];
    if (value === undefined) {
      if (h.required) return `${status}: header ${name} is missing`;
      continue;
    }
    if (h.schema) {
      const schema = deref(doc, h.schema);
      const types = [].concat(schema.type || []);
      let v = value;
      if ((types.includes('integer') || types.includes('number')) && /^-?[0-9]+(\.[0-9]+)?$/.test(value)) v = Number(value);
      const validate = validator(ajv, h.schema, `header:${JSON.stringify(h.schema)}`);
      if (!validate(v)) return `${status}: header ${name}: ${JSON.stringify(value)}: ${ajvErrors(validate.errors)}`;
    }
  }

  const noBody = method === 'head' || status === '204' || status === '304';
  if (noBody || !response.content) {
    if (body.length > 0) return `${status}: a body where the document says there is none`;
    if (!response.content || !headers['content-type']) return null;
  }
  const ct = headers['content-type'];
  if (ct === undefined) return `${status}: no Content-Type, where the document says ${Object.keys(response.content).join(', ')}`;
  const [key, media] = contentFor(response.content, ct);
  if (!key) return `${status}: Content-Type ${ct} is not documented (${Object.keys(response.content).join(', ')})`;
  if (noBody || !media.schema) return null;
  let value = body.toString('utf8');
  if (isJson(mediaType(ct).essence)) {
    try {
      value = JSON.parse(value);
    } catch (e) {
      return `${status}: the body is not JSON: ${e.message}`;
    }
  } else if (Object.keys(media.schema).length === 0) {
    return null;
  }
  const validate = validator(ajv, media.schema, `${what} ${status} ${key}`);
  if (!validate(value)) return `${status} ${key}: ${ajvErrors(validate.errors)}`;
  return null;
}

function check(docPath, casesPath) {
  const doc = load(docPath);
  const ajv = makeAjv(doc);
  const cases = load(casesPath);
  let bad = 0;
  cases.forEach((c, i) => {
    let why;
    try {
      why = checkOne(doc, ajv, c);
    } catch (e) {
      why = `cannot check: ${e.message}`;
    }
    if (why === null) console.log(`ok ${i}`);
    else {
      bad++;
      console.log(`not ok ${i}: ${why.replace(/\n/g, ' ')}`);
    }
  });
  return bad ? 1 : 0;
}

function response(docPath, template, method, status, contentType, bodyFile) {
  const doc = load(docPath);
  const ajv = makeAjv(doc);
  const c = {
    template: template === '-' ? null : template,
    method,
    status,
    headers: contentType ? { 'content-type': contentType } : {},
    body_base64: bodyFile ? fs.readFileSync(bodyFile).toString('base64') : '',
  };
  const why = checkOne(doc, ajv, c);
  console.log(why === null ? 'ok' : why);
  return why === null ? 0 : 1;
}

async function main(argv) {
  const [mode, ...args] = argv;
  if (mode === 'lint' && args.length === 1) return lint(args[0]);
  if (mode === 'check' && args.length === 2) return check(args[0], args[1]);
  if (mode === 'response' && args.length >= 4) return response(...args);
  console.error('usage: validate.js lint DOC | check DOC CASES | response DOC TEMPLATE METHOD STATUS [CONTENT_TYPE [BODY_FILE]]');
  return 2;
}

main(process.argv.slice(2)).then((rc) => { process.exitCode = rc; }, (e) => {
  console.log(`error: ${e.stack || e}`);
  process.exitCode = 2;
});
