'use strict';
// The wire to the native addon: arguments to JSON text (camelCase input keys to the core's
// snake_case; Dates as RFC 3339), results back from JSON, rejections to AustaErrors.

const { snake } = require('./names');
const { fromNative, ValidationError } = require('./errors');

// Which arguments and fields are input records comes from the registry (lib/operations.js).
const { INPUTS, NESTED } = require('./operations');

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);

function input(object) {
  if (Array.isArray(object)) return object.map(input);
  if (!isPlainObject(object)) return object;
  const out = {};
  for (const [key, value] of Object.entries(object)) {
    if (value === undefined) continue;
    const name = snake(key);
    out[name] = NESTED.has(name) ? input(value) : value;
  }
  return out;
}

/** The arguments of one call as JSON text. */
function encode(args) {
  const out = {};
  for (const [key, value] of Object.entries(args || {})) {
    if (value === undefined) continue;
    const name = snake(key);
    if (name === 'rows') out.rows = value.map(input);
    else out[name] = INPUTS.has(name) ? input(value) : value;
  }
  try {
    return JSON.stringify(out, (_, v) => {
      if (typeof v === 'number' && !Number.isFinite(v)) throw new ValidationError('NaN and infinite numbers are not valid values', 'validation');
      if (typeof v === 'bigint') throw new ValidationError('BigInt values cannot be passed to austa', 'validation');
      return v;
    });
  } catch (error) {
    if (error instanceof ValidationError) throw error;
    throw new ValidationError('the arguments cannot be serialized (a cycle?)', 'validation');
  }
}

/** Runs one operation on a native database or scope; resolves to the decoded JSON result. */
async function call(target, op, args, offset = 0, written = 0) {
  const text = encode(args);
  let result;
  try {
    result = await target.call(op, text);
  } catch (error) {
    throw fromNative(error, offset, written);
  }
  return JSON.parse(result);
}

/** Runs a native call that resolves to a handle or a string, mapping its rejection. */
async function native(promise) {
  try {
    return await promise;
  } catch (error) {
    throw fromNative(error);
  }
}

module.exports = { call, native, encode, input };
