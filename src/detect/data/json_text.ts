// JSON text with errors a user can act on: JSON.parse, and on failure a one-line DataError
// with the offset, line and column where the text stops being JSON (V8 names the position
// only for some errors, so a small RFC 8259 recogniser finds it). Not a parser of its own:
// the value always comes from JSON.parse.

import { DataError } from '../../errors.js';

/** A parsed JSON value, before it is checked. */
type Json = unknown;

/**
 * A message made one printable line: white space runs become one space, other control characters '?'.
 * @example printable('a\nb\x07')  // 'a b?'
 */
export function printable(s: string): string {
  return s.replace(/\s+/g, ' ').replace(/[\x00-\x1f\x7f]/g, '?');
}

/**
 * Line and column (1-based) of a character offset, for syntax errors.
 * @example lineColumn('{\n  x', 4)  // 'line 2, column 3'
 */
export function lineColumn(text: string, pos: number): string {
  let line = 1;
  let last = -1;
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) { line++; last = i; }
  return `line ${line}, column ${pos - last}`;
}

/**
 * Where JSON.parse stopped: the offset of the first character that is not valid JSON (V8's
 * messages give it only for some errors). A plain recursive descent over RFC 8259's grammar,
 * run only after JSON.parse has failed. -1 when the text is valid.
 * @example jsonErrorOffset('{"a": 1,}')  // 8
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = (): void => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  const fail = (): never => { throw i; };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        string(); ws();
        if (text[i] !== ':') fail();
        i++; value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        fail();
      }
    } else if (c === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        fail();
      }
    } else if (c === '"') {
      string();
    } else {
      const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
      if (!m) fail();
      i += m![0].length;
    }
  };
  const string = (): void => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') { if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail(); i += 4; } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  try {
    value(); ws();
    return i < text.length ? i : -1;
  } catch (at) {
    return typeof at === 'number' ? at : -1;
  }
}

/**
 * Parses JSON text; a syntax error is a one-line DataError with the position (offset, line, column).
 * @example const j = parseJsonText('{"images": []}', 'instances.json');
 */
export function parseJsonText(text: string, file: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    const msg = printable((e as Error).message);
    const m = /position (\d+)/.exec(msg);
    const pos = m ? Number(m[1]) : jsonErrorOffset(text);
    const where = text.trim() === '' ? ' (the file is empty)' : pos >= 0 ? ` (at offset ${pos}: ${lineColumn(text, pos)})` : '';
    throw new DataError(`${file}: malformed JSON: ${msg}${where}`, { cause: e });
  }
}
