// @ts-check
// Shape checks for lexicon documents. Written by hand instead of pulling in
// @atproto/lexicon so the build stays dependency-free; it only has to catch
// the mistakes people actually make when editing these files (typos in type
// names, ids that drift from their path, dangling refs).

const NSID = /^[a-zA-Z]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?)+$/;

const PRIMARY_TYPES = new Set(['record', 'query', 'procedure', 'subscription']);
const FIELD_TYPES = new Set([
  'null', 'boolean', 'integer', 'string', 'bytes', 'cid-link', 'blob',
  'array', 'object', 'params', 'token', 'ref', 'union', 'unknown',
]);
const STRING_FORMATS = new Set([
  'at-identifier', 'at-uri', 'cid', 'datetime', 'did', 'handle', 'language',
  'nsid', 'record-key', 'tid', 'uri',
]);
const RECORD_KEY = /^(tid|nsid|any|literal:[a-zA-Z0-9._~:-]{1,512})$/;

/**
 * @typedef {Record<string, unknown>} Obj
 * @typedef {{ref: string, at: string}} RefUse
 */

/** @param {unknown} v @returns {v is Obj} */
function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The id a document must carry, derived from its path below lexicons/.
 * @param {string} relPath e.g. "space/atbb/forum.json" (either slash)
 */
export function idFromPath(relPath) {
  return relPath.replace(/\\/g, '/').replace(/\.json$/, '').split('/').join('.');
}

/**
 * Validate one document. Returns human-readable problems (empty when valid)
 * and the refs it uses, so that the caller can check them against the set.
 * @param {unknown} doc
 * @param {string} expectedId
 * @returns {{errors: string[], refs: RefUse[]}}
 */
export function checkDocument(doc, expectedId) {
  /** @type {string[]} */
  const errors = [];
  /** @type {RefUse[]} */
  const refs = [];
  if (!isObject(doc)) {
    return { errors: ['document must be a JSON object'], refs };
  }
  if (doc.lexicon !== 1) errors.push('lexicon must be 1');
  if (typeof doc.id !== 'string' || !NSID.test(doc.id)) {
    errors.push('id must be an NSID such as space.atbb.post');
  } else if (doc.id !== expectedId) {
    errors.push(`id ${doc.id} does not match its file path (expected ${expectedId})`);
  }
  const defs = doc.defs;
  if (!isObject(defs)) {
    errors.push('defs must be an object');
    return { errors, refs };
  }
  if (!('main' in defs)) errors.push('defs.main is missing');
  const localNames = new Set(Object.keys(defs));

  /** @param {unknown} def @param {string} at @param {boolean} topLevel */
  const visit = (def, at, topLevel) => {
    if (!isObject(def)) {
      errors.push(`${at}: must be an object`);
      return;
    }
    const type = def.type;
    if (typeof type !== 'string') {
      errors.push(`${at}: type is missing`);
      return;
    }
    if (PRIMARY_TYPES.has(type)) {
      if (!(topLevel && at === 'defs.main')) {
        errors.push(`${at}: ${type} is only allowed as defs.main`);
      }
    } else if (!FIELD_TYPES.has(type)) {
      errors.push(`${at}: unknown type ${JSON.stringify(type)}`);
      return;
    }
    switch (type) {
      case 'record':
        if (typeof def.key !== 'string' || !RECORD_KEY.test(def.key)) {
          errors.push(`${at}.key: must be tid, nsid, any or literal:<value>`);
        }
        if (!isObject(def.record) || def.record.type !== 'object') {
          errors.push(`${at}.record: must be an object definition`);
        } else {
          visit(def.record, `${at}.record`, false);
        }
        break;
      case 'query':
      case 'procedure':
      case 'subscription':
        if (def.parameters !== undefined) visit(def.parameters, `${at}.parameters`, false);
        break;
      case 'object':
      case 'params': {
        const props = def.properties;
        if (!isObject(props)) {
          errors.push(`${at}.properties: must be an object`);
          break;
        }
        for (const [name, prop] of Object.entries(props)) {
          visit(prop, `${at}.properties.${name}`, false);
        }
        if (def.required !== undefined) {
          if (!Array.isArray(def.required)) {
            errors.push(`${at}.required: must be an array`);
          } else {
            for (const name of def.required) {
              if (typeof name !== 'string' || !(name in props)) {
                errors.push(`${at}.required: ${JSON.stringify(name)} is not a property`);
              }
            }
          }
        }
        break;
      }
      case 'array':
        visit(def.items, `${at}.items`, false);
        break;
      case 'string':
        if (def.format !== undefined && (typeof def.format !== 'string' || !STRING_FORMATS.has(def.format))) {
          errors.push(`${at}.format: unknown string format ${JSON.stringify(def.format)}`);
        }
        break;
      case 'ref':
        if (typeof def.ref !== 'string' || def.ref === '') {
          errors.push(`${at}.ref: must be a non-empty string`);
        } else {
          refs.push({ ref: def.ref, at });
        }
        break;
      case 'union':
        if (!Array.isArray(def.refs) || def.refs.some((r) => typeof r !== 'string' || r === '')) {
          errors.push(`${at}.refs: must be an array of refs`);
        } else {
          for (const r of def.refs) refs.push({ ref: String(r), at });
        }
        break;
      default:
        break;
    }
  };

  for (const [name, def] of Object.entries(defs)) visit(def, `defs.${name}`, true);

  // Local refs can be resolved right here; cross-document ones need the set.
  for (const { ref, at } of refs) {
    if (ref.startsWith('#') && !localNames.has(ref.slice(1))) {
      errors.push(`${at}: ref ${ref} does not name a def in this document`);
    }
  }
  return { errors, refs };
}

/**
 * Validate a whole set of documents keyed by their path below lexicons/.
 * Refs into a namespace the set owns must resolve; refs elsewhere (e.g.
 * com.atproto.*) are trusted, since those lexicons live upstream.
 * @param {Map<string, unknown>} docsByPath
 * @returns {string[]} problems, each prefixed with the file it concerns
 */
export function checkSet(docsByPath) {
  /** @type {string[]} */
  const errors = [];
  /** @type {Map<string, Obj>} */
  const byId = new Map();
  /** @type {Array<{path: string, refs: RefUse[]}>} */
  const pending = [];
  for (const [path, doc] of docsByPath) {
    const result = checkDocument(doc, idFromPath(path));
    for (const e of result.errors) errors.push(`${path}: ${e}`);
    if (isObject(doc) && typeof doc.id === 'string') {
      if (byId.has(doc.id)) errors.push(`${path}: id ${doc.id} is defined twice`);
      byId.set(doc.id, doc);
    }
    pending.push({ path, refs: result.refs });
  }
  const ownedPrefixes = new Set([...byId.keys()].map((id) => id.split('.').slice(0, -1).join('.')));
  for (const { path, refs } of pending) {
    for (const { ref, at } of refs) {
      if (ref.startsWith('#')) continue;
      const [targetId = '', defName = 'main'] = ref.split('#');
      const prefix = targetId.split('.').slice(0, -1).join('.');
      if (!ownedPrefixes.has(prefix)) continue;
      const target = byId.get(targetId);
      const targetDefs = target && isObject(target.defs) ? target.defs : undefined;
      if (!targetDefs || !(defName in targetDefs)) {
        errors.push(`${path}: ${at}: ref ${ref} does not resolve`);
      }
    }
  }
  return errors;
}
