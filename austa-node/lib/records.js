'use strict';
// Decoding results into records: plain objects with camelCase fields, `Date` timestamps, string ids,
// string enums and JSON as objects. Each record's prototype redacts its sensitive fields in
// `util.inspect` (so in console.log and in test failure output); the fields themselves hold the
// decrypted values the caller asked for, and JSON.stringify includes them.

const util = require('node:util');
const schema = require('./schema');

const prototypes = {};

function prototypeOf(name) {
  let proto = prototypes[name];
  if (proto) return proto;
  const sensitive = new Set(schema[name].sensitive);
  proto = {
    [util.inspect.custom](depth, options, inspect) {
      const shown = {};
      for (const key of Object.keys(this)) {
        shown[key] = sensitive.has(key) && this[key] !== null ? '<redacted>' : this[key];
      }
      return `${name} ${inspect(shown, { ...options, depth: options.depth == null ? null : options.depth })}`;
    },
  };
  Object.defineProperty(proto, Symbol.toStringTag, { value: name });
  prototypes[name] = proto;
  return proto;
}

function decodeValue(decoding, value) {
  if (value === null || value === undefined || decoding === null) return value ?? null;
  if (decoding === 'date') return new Date(value);
  switch (decoding[0]) {
    case 'record':
      return decode(decoding[1], value);
    case 'list':
      return value.map((v) => decodeValue(decoding[1], v));
    case 'tuple':
      return value.map((v, i) => decodeValue(decoding[1][i], v));
    default:
      throw new TypeError(`unknown decoding ${decoding}`);
  }
}

/** A record of type `name` from its wire object. */
function decode(name, wire) {
  const record = Object.create(prototypeOf(name));
  for (const [js, key, decoding] of schema[name].fields) {
    record[js] = decodeValue(decoding, wire[key]);
  }
  return record;
}

module.exports = { decode };
