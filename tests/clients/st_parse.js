// SillyTavern 1.12.6's reading of cards, worlds and chats, for the round-trip tests.
//
// Follows, step for step (no npm packages, so it runs offline):
//  - png-chunks-extract (IHDR first, CRC-32 of every chunk checked, stops at IEND),
//    png-chunk-text's decode (keyword and text as one char per byte) and
//    src/character-card-parser.js read(): the tEXt 'ccv3' chunk wins over 'chara', matched
//    case-insensitively, base64 -> utf8 -> the JSON text;
//  - importFromJson / importFromCharX: JSON.parse of the file / of the zip's card.json;
//  - src/endpoints/characters.js readFromV2(): top-level fields rebuilt from data, with the
//    talkativeness 0.5 / fav false back-fill ('chat' fixed to "<now>" so runs compare);
//  - src/endpoints/chats.js: a chat is split on '\n', each line JSON.parse'd, failures dropped;
//  - worlds: JSON.parse of the file.
// Usage: node st_parse.js KIND FILE...   (KIND: card, world or chat); prints one JSON array.
'use strict';
const fs = require('fs');
const zlib = require('zlib');

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();
function crc32(bytes) {
  let c = -1;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xFF] ^ (c >>> 8);
  return c ^ -1;
}

function extractChunks(data) {  // png-chunks-extract
  const header = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
  for (let i = 0; i < 8; i++) if (data[i] !== header[i]) throw new Error('Invalid .png file header');
  const chunks = [];
  let idx = 8, ended = false;
  while (idx < data.length) {
    const length = data.readUInt32BE(idx); idx += 4;
    const chunk = data.subarray(idx, idx + 4 + length); idx += 4 + length;
    const name = String.fromCharCode(chunk[0], chunk[1], chunk[2], chunk[3]);
    if (!chunks.length && name !== 'IHDR') throw new Error('IHDR header missing');
    if (name === 'IEND') { ended = true; chunks.push({ name, data: Buffer.alloc(0) }); break; }
    const crcActual = data.readInt32BE(idx); idx += 4;
    if (crc32(chunk) !== crcActual) throw new Error('CRC values for ' + name + ' header do not match, PNG file is likely corrupted');
    chunks.push({ name, data: chunk.subarray(4) });
  }
  if (!ended) throw new Error('.png file ended prematurely: no IEND header was found');
  return chunks;
}

function decodeText(data) {  // png-chunk-text
  let naming = true, text = '', name = '';
  for (let i = 0; i < data.length; i++) {
    const code = data[i];
    if (naming) { if (code) name += String.fromCharCode(code); else naming = false; }
    else { if (code) text += String.fromCharCode(code); else throw new Error('Invalid NULL character found.'); }
  }
  return { keyword: name, text };
}

function readPng(image, keyword) {  // character-card-parser.js read(); keyword forces one chunk
  const textChunks = extractChunks(image).filter((c) => c.name === 'tEXt').map((c) => decodeText(c.data));
  if (textChunks.length === 0) throw new Error('No PNG metadata.');
  for (const wanted of keyword ? [keyword] : ['ccv3', 'chara']) {
    const index = textChunks.findIndex((c) => c.keyword.toLowerCase() === wanted);
    if (index > -1) return Buffer.from(textChunks[index].text, 'base64').toString('utf8');
  }
  throw new Error('No PNG metadata.');
}

function zipMember(buf, wanted) {  // the card.json of a CHARX, by the central directory
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error('not a zip');
  let at = buf.readUInt32LE(eocd + 16);
  const count = buf.readUInt16LE(eocd + 10);
  for (let i = 0; i < count; i++) {
    const method = buf.readUInt16LE(at + 10), size = buf.readUInt32LE(at + 20);
    const nameLen = buf.readUInt16LE(at + 28), extraLen = buf.readUInt16LE(at + 30), commentLen = buf.readUInt16LE(at + 32);
    const local = buf.readUInt32LE(at + 42);
    const name = buf.toString('utf8', at + 46, at + 46 + nameLen);
    if (name === wanted) {
      const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
      const body = buf.subarray(start, start + size);
      return method === 0 ? body : zlib.inflateRawSync(body);
    }
    at += 46 + nameLen + extraLen + commentLen;
  }
  return null;
}

function get(obj, path) {
  return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function readFromV2(char) {  // characters.js
  if (char.data === undefined) return char;
  const fieldMappings = {
    name: 'name', description: 'description', personality: 'personality', scenario: 'scenario',
    first_mes: 'first_mes', mes_example: 'mes_example', talkativeness: 'extensions.talkativeness',
    fav: 'extensions.fav', tags: 'tags',
  };
  for (const [charField, v2Path] of Object.entries(fieldMappings)) {
    const v2Value = get(char.data, v2Path);
    if (v2Value === undefined) {
      let defaultValue;
      if (v2Path === 'extensions.talkativeness') defaultValue = 0.5;
      if (v2Path === 'extensions.fav') defaultValue = false;
      if (defaultValue !== undefined) char[charField] = defaultValue;
      continue;
    }
    char[charField] = v2Value;
  }
  char.chat = char.chat ?? '<now>';
  return char;
}

function readCard(path, how) {
  const buf = fs.readFileSync(path);
  let text;
  if (buf[0] === 0x89) text = readPng(buf, how === 'chara' ? 'chara' : null);
  else if (buf[0] === 0x50 && buf[1] === 0x4B) text = zipMember(buf, 'card.json').toString();
  else text = buf.toString('utf8');
  const parsed = JSON.parse(text);
  return { parsed, char: readFromV2(JSON.parse(text)) };
}

const [kind, ...files] = process.argv.slice(2);
const out = files.map((arg) => {
  const [path, how] = arg.split('::');
  if (kind === 'card') return readCard(path, how);
  const data = fs.readFileSync(path, 'utf8');
  if (kind === 'chat') return data.split('\n').map((l) => { try { return JSON.parse(l); } catch (_) { return undefined; } }).filter((x) => x);
  return JSON.parse(data);
});
process.stdout.write(JSON.stringify(out));
