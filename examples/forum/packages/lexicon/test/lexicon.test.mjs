import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { checkDocument, checkSet, idFromPath } from '../scripts/validate.mjs';

const valid = () => ({
  lexicon: 1,
  id: 'space.atbb.thing',
  defs: {
    main: {
      type: 'record',
      key: 'tid',
      record: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string', maxLength: 10 },
          at: { type: 'string', format: 'datetime' },
          parent: { type: 'ref', ref: '#parentRef' },
          forum: { type: 'ref', ref: 'com.atproto.repo.strongRef' },
        },
      },
    },
    parentRef: { type: 'object', properties: { uri: { type: 'string', format: 'at-uri' } } },
  },
});

/** @param {(doc: any) => void} mutate */
function errorsAfter(mutate) {
  const doc = valid();
  mutate(doc);
  return checkDocument(doc, 'space.atbb.thing').errors.join('\n');
}

describe('checkDocument', () => {
  it('accepts a well-formed record lexicon', () => {
    assert.deepEqual(checkDocument(valid(), 'space.atbb.thing').errors, []);
  });

  it('derives the id from the file path', () => {
    assert.equal(idFromPath('space/atbb/post.json'), 'space.atbb.post');
    assert.equal(idFromPath('space\\atbb\\post.json'), 'space.atbb.post');
  });

  const cases = [
    ['a wrong lexicon version', (d) => (d.lexicon = 2), /lexicon must be 1/],
    ['an id that does not match the path', (d) => (d.id = 'space.atbb.other'), /does not match its file path/],
    ['an id that is not an NSID', (d) => (d.id = 'thing'), /id must be an NSID/],
    ['a missing main def', (d) => delete d.defs.main, /defs\.main is missing/],
    ['an unknown type', (d) => (d.defs.main.record.properties.name.type = 'text'), /unknown type "text"/],
    ['a missing type', (d) => delete d.defs.parentRef.type, /defs\.parentRef: type is missing/],
    ['a required field that is not a property', (d) => d.defs.main.record.required.push('title'), /"title" is not a property/],
    ['a dangling local ref', (d) => (d.defs.main.record.properties.parent.ref = '#nope'), /ref #nope does not name a def/],
    ['a record that is not main', (d) => (d.defs.parentRef = valid().defs.main), /record is only allowed as defs\.main/],
    ['a bad record key', (d) => (d.defs.main.key = 'random'), /key: must be tid/],
    ['an unknown string format', (d) => (d.defs.main.record.properties.at.format = 'date'), /unknown string format "date"/],
  ];
  for (const [what, mutate, expected] of cases) {
    it(`rejects ${what}`, () => {
      assert.match(errorsAfter(/** @type {(doc: any) => void} */ (mutate)), /** @type {RegExp} */ (expected));
    });
  }
});

describe('checkSet', () => {
  it('resolves refs between documents of the namespace it owns', () => {
    const other = { lexicon: 1, id: 'space.atbb.other', defs: { main: { type: 'token' } } };
    const doc = valid();
    doc.defs.main.record.properties.parent = { type: 'ref', ref: 'space.atbb.other' };
    assert.deepEqual(checkSet(new Map([['space/atbb/thing.json', doc], ['space/atbb/other.json', other]])), []);
  });

  it('reports a ref to a document of its namespace that does not exist', () => {
    const doc = valid();
    doc.defs.main.record.properties.parent = { type: 'ref', ref: 'space.atbb.missing#x' };
    const errors = checkSet(new Map([['space/atbb/thing.json', doc]]));
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? '', /^space\/atbb\/thing\.json: .*ref space\.atbb\.missing#x does not resolve/);
  });
});

describe('built package', () => {
  it('exports the three atBB lexicons with literal ids', async () => {
    const mod = await import('../dist/index.js');
    assert.deepEqual(
      { ...mod.ids },
      { SpaceAtbbCategory: 'space.atbb.category', SpaceAtbbForum: 'space.atbb.forum', SpaceAtbbPost: 'space.atbb.post' },
    );
    assert.equal(mod.getLexicon('space.atbb.post')?.defs.main.type, 'record');
    assert.equal(mod.getLexicon('space.atbb.nope'), undefined);
  });

  it('writes a JSON index equal to the sources', async () => {
    const index = JSON.parse(await readFile(new URL('../dist/lexicons.json', import.meta.url), 'utf8'));
    const forum = JSON.parse(await readFile(new URL('../lexicons/space/atbb/forum.json', import.meta.url), 'utf8'));
    assert.deepEqual(index['space.atbb.forum'], forum);
    assert.deepEqual(Object.keys(index).sort(), ['space.atbb.category', 'space.atbb.forum', 'space.atbb.post']);
  });
});
