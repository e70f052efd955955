'use strict';
// The methods of the operation groups, built from the generated table of the core's registry
// (lib/operations.js): each names its operation, its arguments and how its result decodes. The bulk
// paths (createMany, importRows) and stream are written here, over the table's operations.

const { call } = require('./wire');
const { decode } = require('./records');
const { BatchError, AustaError } = require('./errors');
const { GROUPS } = require('./operations');

const DEFAULT_BATCH_SIZE = 1000;
const DEFAULT_PAGE_SIZE = 500;

/** Decoders of results, by kind. */
function decoder(kind, model) {
  switch (kind) {
    case 'one':
      return (v) => decode(model, v);
    case 'maybe':
      return (v) => (v === null ? null : decode(model, v));
    case 'many':
      return (v) => v.map((x) => decode(model, x));
    case 'page':
      return (v) => ({ items: v.items.map((x) => decode(model, x)), next: v.next });
    case 'void':
      return () => undefined;
    case 'raw':
      return (v) => v;
    default:
      throw new TypeError(`unknown result kind ${kind}`);
  }
}

/**
 * The function of one operation: `run(op, args)` performs the call (a scope's or the database's).
 * Arguments are positional, then the options object, then the page.
 */
function operation(run, [, op, positional, options, paged, kind, record]) {
  const decodeResult = decoder(kind, record);
  return async function (...values) {
    const args = {};
    positional.forEach((name, i) => {
      args[name] = values[i];
    });
    let next = positional.length;
    if (options.length) {
      const given = values[next++] || {};
      for (const name of options) args[name] = given[name];
    }
    if (paged) {
      const page = values[next] || {};
      args.limit = page.limit;
      args.after = page.after;
    }
    return decodeResult(await run.call(this, op, args));
  };
}

/** Defines the operations of `specs` as methods of `target`, run through `run`. */
function defineOperations(target, specs, run) {
  for (const spec of specs) target[spec[0]] = operation(run, spec);
  return target;
}

async function* chunks(rows, size) {
  if (!(size >= 1)) throw new RangeError('batchSize must be at least 1');
  let chunk = [];
  for await (const row of rows) {
    chunk.push(row);
    if (chunk.length >= size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length) yield chunk;
}

function bulkMethods(repo, handle, wire, model) {
  const bulk = async (rows, options, countOnly, onChunk) => {
    let offset = 0;
    let written = 0;
    for await (const chunk of chunks(rows, (options && options.batchSize) || DEFAULT_BATCH_SIZE)) {
      let result;
      try {
        result = await call(handle, `${wire}.create_many`, { rows: chunk, countOnly }, offset, written);
      } catch (error) {
        if (error instanceof AustaError && !(error instanceof BatchError)) error.written = written;
        throw error;
      }
      written += onChunk(result);
      offset += chunk.length;
    }
    return written;
  };
  repo.createMany = async (rows, options) => {
    const created = [];
    await bulk(rows, options, false, (result) => {
      for (const row of result) created.push(decode(model, row));
      return result.length;
    });
    return created;
  };
  repo.importRows = (rows, options) => bulk(rows, options, true, (result) => result.count);
}

/**
 * The object of one operation group (`patients`, `organizations`, ...). `handle` is the native
 * scope or database; `run(op, args)` performs a call on it.
 */
function group(name, handle, run) {
  const { wire, model, bulk, methods } = GROUPS[name];
  const repo = defineOperations({}, methods, run);
  if (methods.some((m) => m[0] === 'list' && m[4])) {
    repo.stream = async function* stream(options = {}) {
      let after = null;
      do {
        const page = await repo.list({ limit: options.pageSize || DEFAULT_PAGE_SIZE, after });
        yield* page.items;
        after = page.next;
      } while (after !== null);
    };
  }
  if (bulk) bulkMethods(repo, handle, wire, model);
  Object.defineProperty(repo, Symbol.toStringTag, { value: `Repository ${wire}` });
  return repo;
}

/** The names of the groups of a target (`'scope'` or `'database'`). */
function groupNames(target) {
  return Object.keys(GROUPS).filter((name) => GROUPS[name].target === target);
}

module.exports = { group, groupNames, defineOperations, decode };
